import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { runTsx, type Child } from './support/child-process.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_MERCHANT, orderBody } from './support/test-web.ts';

/**
 * The fleet (web, worker, notifier, scheduler, dev provider) as processes on a Redis of the test's
 * own, which the test flushes and takes down mid-run: every accepted order must still reach
 * DISPATCHED, exactly once, each of its notifications delivered exactly once.
 */
let database: TestDatabase;
let redis: PrivateRedis;
let admin: Redis;
let apiKey: string;
let api: string;
let provider: string;
const children: Child[] = [];

const ORDERS_BEFORE_FLUSH = Number(process.env.LOSS_ORDERS ?? 1000);
const ORDERS_AFTER_FLUSH = ORDERS_BEFORE_FLUSH;
const ORDERS_WHILE_DOWN = 100;
const MERCHANTS = Array.from({ length: 8 }, (_, z) => ({
  id: String(1001 + z),
  name: `Kitchen ${z}`,
  zone_id: `zone-${z}`,
  lat: TEST_MERCHANT.lat + z * 0.02,
  lng: TEST_MERCHANT.lng,
}));

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await PrivateRedis.start();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  admin.on('error', () => undefined); // down on purpose in one test
  apiKey = (await createApiClient(database.db, new IdGenerator(1), 'redis-loss test')).key;
  // Eight zones, each a merchant and 20 riders of 15 slots near it: room for every order of the
  // test, in dispatch batches of a realistic size (the assignment's matrix has a column per free slot).
  await database.db('merchants').insert(MERCHANTS.map((m) => ({ ...TEST_MERCHANT, ...m })));
  await database.db('riders').insert(
    MERCHANTS.flatMap((merchant, z) =>
      Array.from({ length: 20 }, (_, i) => ({
        id: String(9000 + z * 100 + i),
        name: `R${z}-${i}`,
        zone_id: merchant.zone_id,
        lat: merchant.lat + (i % 5) * 0.001,
        lng: merchant.lng + Math.floor(i / 5) * 0.001,
        capacity: 15,
      })),
    ),
  );
  const prefix = randomBytes(4).toString('hex');
  const env = {
    MYSQL_URL: database.mysqlUrl,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `{loss-${prefix}}`,
    CACHE_PREFIX: `loss-${prefix}`,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    HOST: '127.0.0.1',
    WARMUP_ON_START: 'false',
    WARMUP_CRON: '',
    COMPENSATE_CRON: '* * * * * *',
    RECONCILE_CRON: '* * * * * *',
    RECONCILE_CREATED_AFTER_MS: '2000',
    RECONCILE_STUCK_AFTER_MS: '3000',
    RECONCILE_NOTIFY_AFTER_MS: '3000',
    DISPATCH_WINDOW_MS: '100',
    REDIS_TIMEOUT_MS: '500',
    WORKER_WATCHDOG_MS: '3000',
  };
  const start = (file: string, extra: Record<string, string> = {}) => {
    const child = runTsx(file, [], { ...env, ...extra });
    children.push(child);
    return child;
  };
  const devProvider = start('workers/dev-provider.ts', { NOTIFY_PROVIDER_PORT: '0' });
  provider = /POST (http:\/\/127\.0\.0\.1:\d+)\/v1\/messages/.exec(await devProvider.waitForLine(/dev provider ready/, 20_000))![1]!;
  const web = start('workers/web.ts', { PORT: '0' });
  api = /API (http:\/\/127\.0\.0\.1:\d+)\/v1\/orders/.exec(await web.waitForLine(/web listening/, 20_000))![1]!;
  const fleet = [
    start('workers/orders.ts', { NOTIFY_PROVIDER_URL: provider }),
    start('workers/notifier.ts', { NOTIFY_PROVIDER_URL: provider }),
    start('workers/scheduler.ts'),
  ];
  await Promise.all(fleet.map((child) => child.waitForLine(/ready/, 30_000)));
}, 90_000);

afterAll(async () => {
  if (process.env.LOSS_DEBUG) {
    const { writeFileSync } = await import('node:fs');
    children.forEach((child, index) => writeFileSync(`${process.env.LOSS_DEBUG}-${index}.log`, child.output()));
  }
  for (const child of children) child.process.kill('SIGTERM');
  await Promise.all(children.map((child) => Promise.race([child.exited, new Promise((r) => setTimeout(r, 10_000))])));
  for (const child of children) child.kill();
  admin?.disconnect();
  await redis?.stop();
  await database?.drop();
});

let posted = 0;
/** Posts `count` orders, `concurrency` at a time; resolves with the ids answered 202 (every answer must be 202). */
async function postOrders(count: number, concurrency = 8): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const res = await fetch(`${api}/v1/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': `loss-${++posted}`, 'content-type': 'application/json' },
        body: JSON.stringify(orderBody({ merchantId: MERCHANTS[posted % MERCHANTS.length]!.id })),
      });
      const body = (await res.json()) as { id?: string; code?: string };
      if (res.status !== 202 || !body.id) throw new Error(`POST /v1/orders answered ${res.status}: ${JSON.stringify(body)}`);
      ids.push(body.id);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

/** How many of the orders are not DISPATCHED yet, and where they are (said when a wait runs out). */
async function notDispatched(ids: readonly string[]): Promise<number> {
  const rows = (await database.db('orders')
    .whereIn('id', ids)
    .whereNot({ status: 'DISPATCHED' })
    .groupBy('status')
    .select('status')
    .count({ n: '*' })) as unknown as { status: string; n: number }[];
  lastSeen = Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  return rows.reduce((sum, row) => sum + Number(row.n), 0);
}
let lastSeen: Record<string, number> = {};

async function expectExactlyOnce(ids: readonly string[]): Promise<void> {
  const { db } = database;
  // One rider each, taken once: one DISPATCHED event, one PRICED event per order.
  for (const to of ['PRICED', 'DISPATCHED']) {
    const perOrder = await db('order_events').whereIn('order_id', ids).where({ to_status: to }).groupBy('order_id').select('order_id').count({ n: '*' });
    expect(perOrder, `${to} events`).toHaveLength(ids.length);
    expect(perOrder.filter((row) => Number(row.n) !== 1), `orders ${to} more than once`).toEqual([]);
  }
  const [{ slots }] = (await db('riders').sum({ slots: 'active_orders' })) as [{ slots: number }];
  const [{ n: dispatched }] = (await db('orders').where({ status: 'DISPATCHED' }).count({ n: '*' })) as [{ n: number }];
  expect(Number(slots)).toBe(Number(dispatched));
  // Both notifications of each order delivered, none twice (the provider keeps one message per key).
  await vi.waitFor(
    async () => {
      const [sent] = await db('notifications').whereIn('order_id', ids).where({ status: 'SENT' }).count({ n: '*' });
      expect(Number(sent!.n)).toBe(ids.length * 2);
    },
    { timeout: 60_000, interval: 250 },
  );
  const { messages } = (await (await fetch(`${provider}/v1/messages`)).json()) as { messages: { orderId: string; kind: string }[] };
  const wanted = new Set(ids);
  const keys = messages.filter((m) => wanted.has(m.orderId)).map((m) => `${m.orderId}:${m.kind}`);
  expect(keys).toHaveLength(ids.length * 2);
  expect(new Set(keys).size).toBe(keys.length);
}

describe('losing Redis', () => {
  it(`FLUSHALL in the middle of ${ORDERS_BEFORE_FLUSH + ORDERS_AFTER_FLUSH} orders: every order is dispatched once and notified once`, async () => {
    const started = performance.now();
    const before = await postOrders(ORDERS_BEFORE_FLUSH);
    const postedS = ((performance.now() - started) / 1000).toFixed(1);
    const backlogAtFlush = await notDispatched(before);
    const whereAtFlush = JSON.stringify(lastSeen);
    await admin.flushall();
    const flushedAt = performance.now();
    const afterPosting = postOrders(ORDERS_AFTER_FLUSH);
    await vi.waitFor(async () => expect(await notDispatched(before), JSON.stringify(lastSeen)).toBe(0), { timeout: 150_000, interval: 250 });
    const recoveredAt = performance.now();
    const after = await afterPosting;
    await vi.waitFor(async () => expect(await notDispatched(after), JSON.stringify(lastSeen)).toBe(0), { timeout: 150_000, interval: 250 });
    const { stats } = (await (await fetch(`${provider}/control`)).json()) as { stats: { requests: number; deliveries: number; duplicates: number } };
    console.log(
      `FLUSHALL after ${before.length} orders posted in ${postedS} s, ${backlogAtFlush} not yet dispatched (${whereAtFlush}): all of them dispatched ` +
        `${((recoveredAt - flushedAt) / 1000).toFixed(1)} s after the flush; all ${before.length + after.length} orders in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s; provider: ${stats.requests} requests, ${stats.deliveries} delivered, ` +
        `${stats.duplicates} repeats dropped by idempotency key`,
    );
    await expectExactlyOnce([...before, ...after]);
  }, 240_000);

  it('Redis down: the intake keeps answering 202 into MySQL, and once Redis is back (empty) the reconciler drains the backlog, once', async () => {
    await redis.crash();
    const whileDown = await postOrders(ORDERS_WHILE_DOWN, 4);
    expect(await notDispatched(whileDown)).toBe(ORDERS_WHILE_DOWN);
    const [created] = await database.db('orders').whereIn('id', whileDown).where({ status: 'CREATED' }).count({ n: '*' });
    expect(Number(created!.n)).toBe(ORDERS_WHILE_DOWN);
    await redis.restart();
    const backAt = performance.now();
    await vi.waitFor(async () => expect(await notDispatched(whileDown), JSON.stringify(lastSeen)).toBe(0), { timeout: 120_000, interval: 250 });
    console.log(`Redis back after an outage: the ${ORDERS_WHILE_DOWN} orders accepted meanwhile dispatched ${((performance.now() - backAt) / 1000).toFixed(1)} s later`);
    await expectExactlyOnce(whileDown);
  }, 180_000);
});
