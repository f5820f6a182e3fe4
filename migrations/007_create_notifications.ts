import type { Knex } from 'knex';

/**
 * The notification ledger: one row per (order, kind), so a notification is recorded once however
 * many times its job runs. PENDING until the provider accepted it, then SENT with the provider's
 * message id; attempts and last_error say how the sending went. (status, updated_at) lets an
 * operator or the reconciler find notifications left PENDING without a scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('notifications', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('order_id').unsigned().notNullable();
    t.string('kind', 40).notNullable();
    t.string('status', 16).notNullable().defaultTo('PENDING');
    t.integer('attempts').unsigned().notNullable().defaultTo(0);
    t.string('provider_message_id', 128).nullable();
    t.string('last_error', 1000).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('sent_at', { precision: 3 }).nullable();
    t.unique(['order_id', 'kind'], { indexName: 'notifications_order_kind_unique' });
    t.index(['status', 'updated_at'], 'notifications_status_updated_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('notifications');
}
