import type { Knex } from 'knex';

/**
 * The price job carrying a CREATED order (a batch job: `price-<first id>-<count>-a<attempt>`),
 * written with the row by whoever enqueues it. The reconciler looks up one job per batch, not one
 * per order, to tell an order whose job Redis lost from one whose job is only waiting.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.specificType('price_job_id', 'VARCHAR(96) CHARACTER SET ascii COLLATE ascii_bin').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.dropColumn('price_job_id');
  });
}
