import { randomBytes } from 'node:crypto';
import { DEFAULT_MYSQL_URL } from '../../shared/config.ts';
import { createDb, type Db } from '../../shared/db.ts';
import { migrateLatest } from '../../shared/migrate.ts';

export interface TestDatabase {
  readonly name: string;
  readonly mysqlUrl: string;
  /** A pool on the database, for the test's own checks. */
  readonly db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

const SERVER_URL = process.env.MYSQL_URL ?? DEFAULT_MYSQL_URL;

/**
 * A fresh, migrated database of its own for one test file. A failure while making it (a migration
 * that throws) leaves nothing behind: the pool is closed and the database dropped before the error
 * goes on.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `courier_test_${randomBytes(5).toString('hex')}`;
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const mysqlUrl = url.toString();
  const settings = { mysqlUrl, dbPoolMax: 4, dbTimeoutMs: 5000 };
  const server = createDb(settings, { withDatabase: false });
  try {
    await server.raw('CREATE DATABASE ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci', [name]);
  } finally {
    await server.destroy();
  }
  const db = createDb(settings);
  const drop = async () => {
    try {
      await db.destroy();
    } finally {
      const admin = createDb(settings, { withDatabase: false });
      try {
        await admin.raw('DROP DATABASE IF EXISTS ??', [name]);
      } finally {
        await admin.destroy();
      }
    }
  };
  try {
    await migrateLatest(db);
  } catch (error) {
    await drop().catch(() => undefined); // the migration's failure is the one to report
    throw error;
  }
  return { name, mysqlUrl, db, drop };
}
