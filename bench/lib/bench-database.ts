/** A bench's own MySQL database (named by BENCH_MYSQL_URL), created and migrated by the bench. */
import type { Config } from '../../shared/config.ts';
import { createDb, databaseName, type Db } from '../../shared/db.ts';
import { migrateLatest } from '../../shared/migrate.ts';

/**
 * Creates the database if it is not there (fresh: drops it first, which only a database whose name
 * starts with courier_bench may be), migrates it to the latest schema and answers a pool on it with
 * the migrations that ran.
 */
export async function openBenchDatabase(config: Config, opts: { fresh: boolean }): Promise<{ db: Db; name: string; migrations: string[] }> {
  const name = databaseName(config.mysqlUrl);
  // A fresh database is dropped: never one that is not a bench's own.
  if (opts.fresh && !/^courier_bench/.test(name)) throw new Error(`BENCH_MYSQL_URL must name a database starting with courier_bench, got "${name}"`);
  const server = createDb(config, { withDatabase: false });
  try {
    if (opts.fresh) await server.raw('DROP DATABASE IF EXISTS ??', [name]);
    await server.raw(`CREATE DATABASE${opts.fresh ? '' : ' IF NOT EXISTS'} ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`, [name]);
  } finally {
    await server.destroy();
  }
  const db = createDb(config);
  return { db, name, migrations: await migrateLatest(db) };
}

/** Drops a bench's database (only one whose name starts with courier_bench). */
export async function dropBenchDatabase(config: Config): Promise<void> {
  const name = databaseName(config.mysqlUrl);
  if (!/^courier_bench/.test(name)) throw new Error(`refusing to drop "${name}": not a bench database`);
  const server = createDb(config, { withDatabase: false });
  try {
    await server.raw('DROP DATABASE IF EXISTS ??', [name]);
  } finally {
    await server.destroy();
  }
}
