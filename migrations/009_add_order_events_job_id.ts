import type { Knex } from 'knex';

/**
 * The batch job that made the transition (or, for CREATED, the price job that carries the order):
 * with jobs carrying batches, an order's events are where its story names the jobs it rode in.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('order_events', (t) => {
    t.specificType('job_id', 'VARCHAR(96) CHARACTER SET ascii COLLATE ascii_bin').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('order_events', (t) => {
    t.dropColumn('job_id');
  });
}
