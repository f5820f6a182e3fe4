import type { Knex } from 'knex';

/** Riders: who carries orders. capacity bounds how many active orders one rider holds. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('riders', (t) => {
    t.bigInteger('id').unsigned().primary();
    t.string('name', 200).notNullable();
    t.string('zone_id', 32).notNullable();
    t.string('status', 16).notNullable().defaultTo('AVAILABLE');
    t.decimal('lat', 9, 6).notNullable();
    t.decimal('lng', 9, 6).notNullable();
    t.integer('capacity').unsigned().notNullable().defaultTo(3);
    t.integer('active_orders').unsigned().notNullable().defaultTo(0);
    t.integer('version').unsigned().notNullable().defaultTo(1);
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.index(['zone_id', 'status'], 'riders_zone_status_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('riders');
}
