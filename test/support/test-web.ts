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
  close(): Promise<void>;
}

let keyCounter = 0;

/**
 * A web runtime on a database and queue prefix of its own, with two API clients and one
 * merchant; routeMysqlUrl lets a test put a fault-injecting proxy between the runtime and MySQL. close() closes every connection, drops the database and deletes the Redis keys.
 */
export async function createTestWeb(
  overrides: Partial<Config> = {},
  opts: { routeMysqlUrl?: (databaseUrl: string) => string; logger?: Logger; routeRedisUrl?: (redisUrl: string) => string } = {},
): Promise<TestWeb> {
  const database = await createTestDatabase();
  const queuePrefix = uniqueQueuePrefix();
  const mysqlUrl = opts.routeMysqlUrl ? opts.routeMysqlUrl(database.mysqlUrl) : database.mysqlUrl;
  const config = loadConfig(
    {
      MYSQL_URL: mysqlUrl,
      REDIS_URL: opts.routeRedisUrl ? opts.routeRedisUrl(TEST_REDIS_URL) : TEST_REDIS_URL,
      QUEUE_PREFIX: queuePrefix,
      CACHE_PREFIX: queuePrefix.slice(1, -1), // no braces: cache keys spread over the cluster
      LOG_LEVEL: 'silent',
    },
    overrides,
  );
  const ids = new IdGenerator(config.nodeId);
  const client = await createApiClient(database.db, ids, 'test client');
  const other = await createApiClient(database.db, ids, 'other client');
  await database.db('merchants').insert(TEST_MERCHANT);
  const runtime = await createWebRuntime(config, opts.logger ?? pino({ level: 'silent' }));
  return {
    runtime,
    database,
    config,
    apiKey: client.key,
    clientId: client.id,
    otherApiKey: other.key,
    async postOrder(overrides = {}) {
      const res = await runtime.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { authorization: `Bearer ${client.key}`, 'idempotency-key': `test-order-${++keyCounter}-${Date.now()}` },
        payload: orderBody(overrides),
      });
      if (res.statusCode !== 202) throw new Error(`POST /v1/orders answered ${res.statusCode}: ${res.body}`);
      await runtime.intake.idle();
      return (res.json() as { id: string }).id;
    },
    async forgetCached(orderId) {
      await runtime.writer.cache.evict([orderId]);
    },
    async close() {
      await runtime.close();
      await database.drop();
      await deleteKeysWithPrefix(queuePrefix);
      await deleteKeysWithPrefix(config.cachePrefix);
    },
  };
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
