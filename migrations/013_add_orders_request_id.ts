import type { Knex } from 'knex';

/**
 * The id of the request that created the order (its X-Request-Id, or the one the web made),
 * written by the intake in the same INSERT as the row, so the jobs that carry the order later can
 * log it and an operator can follow the order across processes. NULL for orders from before.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.specificType('request_id', 'VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.dropColumn('request_id');
  });
}
