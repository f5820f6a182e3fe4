import type { Knex } from 'knex';

/** Merchants: where orders are picked up. Ids are app-generated 64-bit integers. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merchants', (t) => {
    t.bigInteger('id').unsigned().primary();
    t.string('name', 200).notNullable();
    t.string('zone_id', 32).notNullable().index();
    t.decimal('lat', 9, 6).notNullable();
    t.decimal('lng', 9, 6).notNullable();
    t.string('address', 500).notNullable().defaultTo('');
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('merchants');
}
