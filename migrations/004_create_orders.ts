import type { Knex } from 'knex';

/**
 * Orders: the source of truth and the outbox. The id is a 64-bit time-ordered number made by the
 * app (it carries its shard), never AUTO_INCREMENT. (client_id, idempotency_key) is unique so a
 * repeated request can never create a second order; (status, next_attempt_at) lets the scheduler
 * find orders due for another attempt without a scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('orders', (t) => {
    t.bigInteger('id').unsigned().primary();
    t.bigInteger('client_id').unsigned().notNullable();
    t.specificType('idempotency_key', 'VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin').notNullable();
    t.specificType('request_hash', 'CHAR(64) CHARACTER SET ascii COLLATE ascii_bin').notNullable();
    t.bigInteger('merchant_id').unsigned().notNullable();
    t.string('zone_id', 32).notNullable();
    t.string('status', 20).notNullable();
    t.integer('version').unsigned().notNullable().defaultTo(1);
    t.integer('attempts').unsigned().notNullable().defaultTo(0);
    t.datetime('next_attempt_at', { precision: 3 }).nullable();
    t.string('last_error', 1000).nullable();
    t.decimal('pickup_lat', 9, 6).notNullable();
    t.decimal('pickup_lng', 9, 6).notNullable();
    t.decimal('dropoff_lat', 9, 6).notNullable();
    t.decimal('dropoff_lng', 9, 6).notNullable();
    t.string('dropoff_address', 500).notNullable();
    t.string('dropoff_phone', 32).notNullable();
    t.json('items').notNullable();
    t.string('note', 500).nullable();
    t.integer('fee_cents').unsigned().nullable();
    t.integer('eta_seconds').unsigned().nullable();
    t.bigInteger('rider_id').unsigned().nullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.unique(['client_id', 'idempotency_key'], { indexName: 'orders_client_idempotency_unique' });
    t.index(['status', 'next_attempt_at'], 'orders_status_next_attempt_idx');
    t.index(['merchant_id', 'created_at'], 'orders_merchant_created_idx');
    t.index(['rider_id'], 'orders_rider_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('orders');
}
