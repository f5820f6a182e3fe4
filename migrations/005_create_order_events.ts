import type { Knex } from 'knex';

/** The audit trail: one row per transition, written in the same transaction as the change. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('order_events', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('order_id').unsigned().notNullable();
    t.string('from_status', 20).nullable();
    t.string('to_status', 20).notNullable();
    t.integer('version').unsigned().notNullable();
    t.string('reason', 500).nullable();
    t.string('actor', 64).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.unique(['order_id', 'version'], { indexName: 'order_events_order_version_unique' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('order_events');
}
