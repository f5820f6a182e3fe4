import type { Knex } from 'knex';

/**
 * When a key was last used, for `client:list`: written by each web process at most once a minute
 * per key (batched), never per request, so it may lag by that much.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_clients', (t) => {
    t.datetime('last_used_at', { precision: 3 }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_clients', (t) => {
    t.dropColumn('last_used_at');
  });
}
