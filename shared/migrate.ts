import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import type { Db } from './db.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

const MIGRATION_FILE = /^\d{3}_[a-z0-9_]+\.ts$/;

/** Migration files in order; each is numbered and makes one change. */
export function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => MIGRATION_FILE.test(file))
    .sort();
}

/**
 * Loads migrations with an import() of our own rather than knex's, so the TypeScript files load
 * under whatever runs us (Node's type stripping for the app, vitest for the tests).
 */
const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => migrationFiles(),
  getMigrationName: (file) => file,
  getMigration: async (file) => (await import(pathToFileURL(`${MIGRATIONS_DIR}/${file}`).href)) as Knex.Migration,
};

/** Brings the schema to the newest migration; returns the names it ran. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, ran] = (await db.migrate.latest({ migrationSource, tableName: 'knex_migrations' })) as [number, string[]];
  return ran;
}
