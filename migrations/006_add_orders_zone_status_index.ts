import type { Knex } from 'knex';

/** Pricing's surge and dispatch's batches ask "open orders of this zone"; this answers without a scan. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.index(['zone_id', 'status'], 'orders_zone_status_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.dropIndex(['zone_id', 'status'], 'orders_zone_status_idx');
  });
}
