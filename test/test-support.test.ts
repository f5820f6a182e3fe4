import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MYSQL_URL } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import type { Db } from '../shared/db.ts';
import { createTestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb } from './support/test-web.ts';

/** Faults this file turns on, and the databases the helpers made (their names, as the migrations saw them). */
const faults = vi.hoisted(() => ({ migration: false, runtimeStart: false, runtimeClose: false, databases: [] as string[] }));

vi.mock('../shared/migrate.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../shared/migrate.ts')>();
  return {
    ...real,
    async migrateLatest(db: Db) {
      const [[row]] = (await db.raw('SELECT DATABASE() AS name')) as [[{ name: string }]];
      faults.databases.push(row.name);
      const ran = await real.migrateLatest(db);
      if (faults.migration) throw new Error('the last migration failed (on purpose)');
      return ran;
    },
  };
});

vi.mock('../workers/web-runtime.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../workers/web-runtime.ts')>();
  return {
    ...real,
    async createWebRuntime(...args: Parameters<typeof real.createWebRuntime>) {
      if (faults.runtimeStart) throw new Error('the runtime did not start (on purpose)');
      const runtime = await real.createWebRuntime(...args);
      if (!faults.runtimeClose) return runtime;
      return {
        ...runtime,
        async close() {
          await runtime.close();
          throw new Error('closing the runtime failed (on purpose)');
        },
      };
    },
  };
});

afterEach(() => {
  faults.migration = false;
  faults.runtimeStart = false;
  faults.runtimeClose = false;
});

async function databaseExists(name: string): Promise<boolean> {
  const admin = createDb({ mysqlUrl: process.env.MYSQL_URL ?? DEFAULT_MYSQL_URL, dbPoolMax: 1, dbTimeoutMs: 5000 }, { withDatabase: false });
  try {
    const [rows] = (await admin.raw('SHOW DATABASES LIKE ?', [name])) as [unknown[]];
    return rows.length > 0;
  } finally {
    await admin.destroy();
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    return await redis.keys(`${prefix}:*`);
  } finally {
    redis.disconnect();
  }
}

describe('test databases', () => {
  it('a migration that fails leaves no database behind, and its own error is the one reported', async () => {
    faults.migration = true;
    await expect(createTestDatabase()).rejects.toThrow('the last migration failed (on purpose)');
    const name = faults.databases.at(-1)!;
    expect(name).toMatch(/^courier_test_/);
    expect(await databaseExists(name)).toBe(false);
  });
});

describe('createTestWeb', () => {
  it('that fails after making its database drops it, and reports its own error', async () => {
    faults.runtimeStart = true;
    await expect(createTestWeb()).rejects.toThrow('the runtime did not start (on purpose)');
    expect(await databaseExists(faults.databases.at(-1)!)).toBe(false);
  });

  it('close() goes on past a step that fails: the database is dropped, the keys deleted, and the failure reported', async () => {
    faults.runtimeClose = true;
    const web = await createTestWeb();
    const name = web.database.name;
    await web.postOrder(); // its job is in Redis, under the queue prefix
    expect(await keysUnder(web.config.queuePrefix)).not.toEqual([]);
    await expect(web.close()).rejects.toThrow('closing the runtime failed (on purpose)');
    expect(await databaseExists(name)).toBe(false);
    expect(await keysUnder(web.config.queuePrefix)).toEqual([]);
  });
});
