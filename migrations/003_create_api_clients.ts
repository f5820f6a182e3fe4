import type { Knex } from 'knex';

/** API clients: only a SHA-256 of each key is stored; the key itself is shown once at creation. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_clients', (t) => {
    t.bigInteger('id').unsigned().primary();
    t.string('name', 200).notNullable();
    t.specificType('key_hash', 'CHAR(64) CHARACTER SET ascii COLLATE ascii_bin').notNullable().unique('api_clients_key_hash_unique');
    t.string('key_prefix', 16).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('revoked_at', { precision: 3 }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_clients');
}
