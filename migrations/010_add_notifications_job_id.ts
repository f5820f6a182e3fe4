import type { Knex } from 'knex';

/**
 * The notification batch job carrying a PENDING notification, written with the ledger row in the
 * transaction of the change that owes it: the reconciler looks up one job per batch.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('notifications', (t) => {
    t.specificType('job_id', 'VARCHAR(96) CHARACTER SET ascii COLLATE ascii_bin').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('notifications', (t) => {
    t.dropColumn('job_id');
  });
}
