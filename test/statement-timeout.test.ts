import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.ts';
import { createDb, type Db } from '../shared/db.ts';
import { isConnectionError } from '../shared/errors/index.ts';
import { createWorkerServices } from '../workers/worker-services.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';

const STATEMENT_TIMEOUT_MS = 400;
const ER_STATEMENT_TIMEOUT = 1969;

let database: TestDatabase;
const opened: Db[] = [];
let proxy: TcpProxy | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.schema.createTable('probe', (table) => {
    table.integer('id').primary();
    table.integer('n').notNullable();
  });
  await database.db('probe').insert({ id: 1, n: 0 });
});

afterEach(async () => {
  proxy?.thaw();
  await Promise.all(opened.splice(0).map((db) => db.destroy()));
  await proxy?.close();
  proxy = undefined;
});

afterAll(async () => {
  await database?.drop();
});

function boundedDb(mysqlUrl = database.mysqlUrl): Db {
  const db = createDb({ mysqlUrl, dbPoolMax: 1, dbTimeoutMs: 2000 }, { statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  opened.push(db);
  return db;
}

async function connectionId(db: Db): Promise<string> {
  const [[row]] = (await db.raw('SELECT CONNECTION_ID() AS id')) as [[{ id: number | string }]];
  return String(row.id);
}

describe('a statement timeout on a pool (DB_STATEMENT_TIMEOUT_MS)', () => {
  it('stops a statement that runs too long with MariaDB errno 1969, and the connection goes on serving', async () => {
    const db = boundedDb();
    const before = await connectionId(db);
    await expect(db.raw('SELECT SLEEP(5)')).rejects.toMatchObject({ errno: ER_STATEMENT_TIMEOUT });
    expect(await connectionId(db)).toBe(before);
  });

  it('stops a statement waiting on a row lock, while the holder still holds it', async () => {
    const db = boundedDb();
    const holder = await database.db.transaction();
    try {
      await holder('probe').where({ id: 1 }).forUpdate();
      await expect(db('probe').where({ id: 1 }).update({ n: 1 })).rejects.toMatchObject({ errno: ER_STATEMENT_TIMEOUT });
      expect(await holder('probe').where({ id: 1 }).first()).toMatchObject({ n: 0 });
    } finally {
      await holder.rollback();
    }
  });

  it('closes a connection that goes silent: the statement and the ROLLBACK behind it fail as a connection error, and the pool connects again', async () => {
    const realPort = Number(new URL(database.mysqlUrl).port || 3306);
    proxy = await TcpProxy.start('127.0.0.1', realPort);
    const db = boundedDb(database.mysqlUrl.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${proxy.port}`));
    const before = await connectionId(db);

    proxy.freeze();
    const failure = await db
      .transaction(async (trx) => {
        await trx('probe').where({ id: 1 }).update({ n: 2 });
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toMatchObject({ code: 'STATEMENT_SILENT', fatal: true });
    expect(isConnectionError(failure)).toBe(true);
    // The transaction's first statement is the one left unanswered; nothing after it was sent.
    expect(proxy.heldFromApp()).toContain('BEGIN');
    expect(proxy.heldFromApp()).not.toContain('UPDATE');

    proxy.thaw();
    const after = await connectionId(db);
    expect(after).not.toBe(before);
    expect(await db('probe').where({ id: 1 }).first()).toMatchObject({ n: 0 });
  });
});

describe('the worker and the notifier take the bound from the config', () => {
  it("the worker's pool carries DB_STATEMENT_TIMEOUT_MS as MariaDB's max_statement_time", async () => {
    const queuePrefix = uniqueQueuePrefix();
    const config = loadConfig({
      MYSQL_URL: database.mysqlUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: queuePrefix,
      DB_STATEMENT_TIMEOUT_MS: '1500',
    });
    const owned = createWorkerServices(config, pino({ level: 'silent' }));
    try {
      const [[row]] = (await owned.services.db.raw('SELECT @@SESSION.max_statement_time AS seconds')) as [[{ seconds: number | string }]];
      expect(Number(row.seconds)).toBe(1.5);
    } finally {
      await owned.close();
      await deleteKeysWithPrefix(queuePrefix);
    }
  });
});
