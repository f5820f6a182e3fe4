import type { Knex } from 'knex';

/**
 * A client's own rate limit, in requests per second (`client:create --rate`, `client:limit`); NULL
 * takes RATE_LIMIT_PER_SECOND. Read with the key, so a change takes effect within
 * AUTH_CACHE_TTL_SECONDS.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_clients', (t) => {
    t.integer('rate_per_second').unsigned().nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_clients', (t) => {
    t.dropColumn('rate_per_second');
  });
}
