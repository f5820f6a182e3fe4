import { pino, type Logger } from 'pino';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../../shared/config.ts';
import { createWebRuntime, type WebRuntime } from '../../workers/web-runtime.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { createTestDatabase, type TestDatabase } from './test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './test-redis.ts';

export const TEST_MERCHANT = { id: '1001', name: 'Test Noodles', zone_id: 'test-zone', lat: 31.2397, lng: 121.4998, address: '1 Test Rd' };

export interface TestWeb {
  readonly runtime: WebRuntime;
  readonly database: TestDatabase;
  readonly config: Config;
  readonly apiKey: string;
  readonly clientId: string;
  /** A second client, to prove one client cannot see another's orders. */
  readonly otherApiKey: string;
  /** Posts an order (orderBody with the overrides) under a fresh key; resolves with its id once it is committed and enqueued. */
  postOrder(overrides?: Record<string, unknown>): Promise<string>;
  /** Drops an order's L2 entry (data or stale mark), as its TTL would. */
  forgetCached(orderId: string): Promise<void>;
  /** Stops the runtime as a SIGTERM does (drain, then close its connections), keeping the database for checks; close() then skips it. */
  closeRuntime(): Promise<void>;
  close(): Promise<void>;
}

let keyCounter = 0;

/** Runs every step, whatever happens to the one before; then throws the first failure (or all of them). */
async function releaseAll(steps: readonly (() => Promise<unknown>)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} steps of the clean-up failed`);
}

/**
 * A web runtime on a database and queue prefix of its own, with two API clients and one
 * merchant; routeMysqlUrl lets a test put a fault-injecting proxy between the runtime and MySQL,
 * isShuttingDown stands for the process's SIGTERM flag. close() closes every connection, drops the
 * database and deletes the Redis keys, each step whatever happened to the one before. If making it
 * fails, what was made so far is released the same way before the error goes on.
 */
export async function createTestWeb(
  overrides: Partial<Config> = {},
  opts: {
    routeMysqlUrl?: (databaseUrl: string) => string;
    routeRedisUrl?: (redisUrl: string) => string;
    logger?: Logger;
    isShuttingDown?: () => boolean;
  } = {},
): Promise<TestWeb> {
  const database = await createTestDatabase();
  const queuePrefix = uniqueQueuePrefix();
  let cachePrefix = queuePrefix.slice(1, -1); // no braces: cache keys spread over the cluster
  let runtime: WebRuntime | undefined;
  let runtimeClosed: Promise<void> | undefined;
  const closeRuntime = () => (runtimeClosed ??= runtime ? runtime.close() : Promise.resolve());
  const release = () =>
    releaseAll([closeRuntime, () => database.drop(), () => deleteKeysWithPrefix(queuePrefix), () => deleteKeysWithPrefix(cachePrefix)]);
  try {
    const mysqlUrl = opts.routeMysqlUrl ? opts.routeMysqlUrl(database.mysqlUrl) : database.mysqlUrl;
    const config = loadConfig(
      {
        MYSQL_URL: mysqlUrl,
        REDIS_URL: opts.routeRedisUrl ? opts.routeRedisUrl(TEST_REDIS_URL) : TEST_REDIS_URL,
        QUEUE_PREFIX: queuePrefix,
        CACHE_PREFIX: cachePrefix,
        LOG_LEVEL: 'silent',
      },
      overrides,
    );
    cachePrefix = config.cachePrefix;
    const ids = new IdGenerator(config.nodeId);
    const client = await createApiClient(database.db, ids, 'test client');
    const other = await createApiClient(database.db, ids, 'other client');
    await database.db('merchants').insert(TEST_MERCHANT);
    const started = await createWebRuntime(config, opts.logger ?? pino({ level: 'silent' }), opts.isShuttingDown ? { isShuttingDown: opts.isShuttingDown } : {});
    runtime = started;
    return {
      runtime: started,
      database,
      config,
      apiKey: client.key,
      clientId: client.id,
      otherApiKey: other.key,
      async postOrder(overrides = {}) {
        const res = await started.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: { authorization: `Bearer ${client.key}`, 'idempotency-key': `test-order-${++keyCounter}-${Date.now()}` },
          payload: orderBody(overrides),
        });
        if (res.statusCode !== 202) throw new Error(`POST /v1/orders answered ${res.statusCode}: ${res.body}`);
        await started.intake.idle();
        return (res.json() as { id: string }).id;
      },
      async forgetCached(orderId) {
        await started.writer.cache.evict([orderId]);
      },
      closeRuntime,
      close: release,
    };
  } catch (error) {
    await release().catch(() => undefined); // the failure that stopped us is the one to report
    throw error;
  }
}

export function orderBody(overrides: Record<string, unknown> = {}) {
  return {
    merchantId: TEST_MERCHANT.id,
    dropoff: { lat: 31.2304, lng: 121.4737, address: '88 Century Ave', phone: '+8613800000000' },
    items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
    note: 'ring twice',
    ...overrides,
  };
}
