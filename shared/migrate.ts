import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/** Brings the schema to the newest migration; returns the names it ran. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, ran] = (await db.migrate.latest({
    directory: MIGRATIONS_DIR,
    loadExtensions: ['.ts'],
    tableName: 'knex_migrations',
  })) as [number, string[]];
  return ran;
}
