import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import { Fleet } from './support/fleet.ts';
import { expectDispatchedOnce, expectNotifiedOnce, postOrders, providerView, seedZones, statusesOf, waitAllDispatched, type Zone } from './support/fleet-orders.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';

/**
 * The fleet (web, worker, notifier, scheduler, dev provider) as processes on a Redis of the test's
 * own, which the test flushes and takes down mid-run: every accepted order must still reach
 * DISPATCHED, exactly once, each of its notifications delivered exactly once. The flush must find
 * work queued at every stage (the queues are paused stage by stage, as an operator can, so the
 * fleet cannot finish before it), and the reconciler is what puts it back.
 */
let database: TestDatabase;
let redis: PrivateRedis;
let admin: Redis;
let fleet: Fleet;
let zones: Zone[];
let apiKey: string;
const queues = new Map<QueueName, Queue>();

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await PrivateRedis.start();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  admin.on('error', () => undefined); // down on purpose in one test
  apiKey = (await createApiClient(database.db, new IdGenerator(1), 'redis-loss test')).key;
  zones = await seedZones(database.db, { zones: 4, riders: 10, capacity: 10 });
  fleet = await Fleet.start({ mysqlUrl: database.mysqlUrl, redisUrl: redis.url });
  for (const name of ['orders', 'dispatch', 'notifications'] as const) {
    const queue = new Queue(name, { connection: { url: redis.url, maxRetriesPerRequest: 1 }, prefix: fleet.queuePrefix });
    queue.on('error', () => undefined);
    queues.set(name, queue);
  }
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
  await Promise.all([...queues.values()].map((queue) => queue.close()));
  admin?.disconnect();
  await redis?.stop();
  await database?.drop();
});

const queue = (name: QueueName) => queues.get(name)!;

/** The reconciler's own report of what it put back, summed over its runs (worker log lines since `from`). */
function reconciled(from: number): { created: number; notifications: number } {
  const runs = fleet
    .process('worker')
    .output()
    .slice(from)
    .split('\n')
    .filter((line) => line.includes('"msg":"reconcile:'))
    .map((line) => JSON.parse(line) as { created: { enqueued: number }; notifications: { enqueued: number } });
  return {
    created: runs.reduce((sum, run) => sum + run.created.enqueued, 0),
    notifications: runs.reduce((sum, run) => sum + run.notifications.enqueued, 0),
  };
}

describe('losing Redis', () => {
  it('FLUSHALL destroys work queued at every stage: the reconciler puts it back, every order is dispatched once, nobody is notified twice', async () => {
    const { db } = database;
    const before = (await providerView(fleet.provider)).stats;
    // Stage by stage, work left in Redis: notifications owed (dispatched orders), dispatch runs
    // (priced orders), price batches (accepted orders).
    await queue('notifications').pause();
    const dispatched = await postOrders(fleet.api, apiKey, zones, 60);
    await waitAllDispatched(db, dispatched, 30_000);
    await queue('dispatch').pause();
    const priced = await postOrders(fleet.api, apiKey, zones, 60);
    await vi.waitFor(async () => expect(await statusesOf(db, priced)).toEqual({ PRICED: priced.length }), { timeout: 30_000, interval: 100 });
    await queue('orders').pause();
    const created = await postOrders(fleet.api, apiKey, zones, 60);

    const priceJobs = [...new Set((await db('orders').whereIn('id', created).pluck('price_job_id')) as string[])];
    const notifyJobs = [...new Set((await db('notifications').whereIn('order_id', dispatched).pluck('job_id')) as string[])];
    await vi.waitFor(async () => expect(await admin.exists(...priceJobs.map((id) => queue('orders').toKey(id))), 'price batches enqueued').toBe(priceJobs.length), {
      timeout: 10_000,
      interval: 20,
    });
    const dispatchJobs = (await queue('dispatch').getJobs(['waiting', 'delayed'])).map((job) => job.id!);
    expect(dispatchJobs.length, 'dispatch runs queued').toBeGreaterThan(0);
    expect(await statusesOf(db, [...dispatched, ...priced, ...created])).toEqual({ DISPATCHED: 60, PRICED: 60, CREATED: 60 });
    const [{ n: owed }] = (await db('notifications').whereIn('order_id', dispatched).where({ status: 'PENDING' }).count({ n: '*' })) as [{ n: number }];
    expect(Number(owed), 'notifications owed').toBe(dispatched.length * 2);

    // The flush lands while more orders arrive; in one transaction with it, the jobs it destroys are counted.
    const workerLog = fleet.process('worker').output().length;
    let flushed: [Error | null, unknown][] | null = null;
    const during = await postOrders(fleet.api, apiKey, zones, 60, {
      onAnswered: (answered) => {
        if (answered !== 30) return;
        const keys = (name: QueueName, ids: readonly string[]) => ids.map((id) => queue(name).toKey(id));
        void admin
          .multi()
          .exists(...keys('orders', priceJobs))
          .exists(...keys('dispatch', dispatchJobs))
          .exists(...keys('notifications', notifyJobs))
          .flushall()
          .exec()
          .then((results) => (flushed = results));
      },
    });
    await vi.waitFor(() => expect(flushed).not.toBeNull(), { timeout: 10_000, interval: 20 });
    expect(flushed!.map(([, value]) => value), 'jobs destroyed by the flush').toEqual([priceJobs.length, dispatchJobs.length, notifyJobs.length, 'OK']);

    const all = [...dispatched, ...priced, ...created, ...during];
    await waitAllDispatched(db, all, 60_000);
    await expectDispatchedOnce(db, all);
    const { repeatsCounted, stats } = await expectNotifiedOnce(db, fleet.provider, all, 60_000);
    // Put back by the reconciler, under the ids the rows name: every lost price batch and every lost
    // notification batch. (The PRICED orders whose dispatch runs were lost are taken by their
    // zone's next run, which the re-priced orders book, or else booked by the reconciler.)
    const putBack = reconciled(workerLog);
    expect(putBack.created, 'CREATED orders put back').toBeGreaterThanOrEqual(created.length);
    expect(putBack.notifications, 'notifications put back').toBeGreaterThanOrEqual(dispatched.length * 2);
    const pricedBy = (await db('order_events').whereIn('order_id', created).where({ to_status: 'PRICED' }).select('order_id', 'job_id')) as { order_id: string; job_id: string }[];
    expect(new Set(pricedBy.map((e) => e.job_id).filter((id) => priceJobs.includes(id))), 'lost batches priced under the ids their rows name').toEqual(new Set(priceJobs));
    // An order priced under another id is one its batch gave up on (out of retries on a loaded
    // machine): recorded PRICING_FAILED first, then re-driven by compensation, never put back anew.
    const redriven = pricedBy.filter((e) => !priceJobs.includes(e.job_id)).map((e) => String(e.order_id));
    const failedFirst = await db('order_events').whereIn('order_id', redriven).where({ to_status: 'PRICING_FAILED' }).distinct('order_id').pluck('order_id');
    expect(new Set(failedFirst.map(String)), 'orders priced under another id').toEqual(new Set(redriven));
    // The provider saw no key twice.
    expect(stats.duplicates - before.duplicates, 'repeats the provider dropped').toBe(0);
    expect(repeatsCounted, 'calls beyond the first, by the ledger').toBe(0);
    expect(stats.deliveries - before.deliveries, 'messages delivered').toBe(all.length * 2);
  }, 150_000);

  it('Redis down: the intake keeps answering 202 into MySQL, and once Redis is back (empty) the reconciler drains the backlog, once', async () => {
    const before = (await providerView(fleet.provider)).stats;
    await redis.crash();
    const whileDown = await postOrders(fleet.api, apiKey, zones, 40, { concurrency: 4 });
    expect(await statusesOf(database.db, whileDown)).toEqual({ CREATED: whileDown.length });
    await redis.restart();
    const backAt = performance.now();
    await waitAllDispatched(database.db, whileDown, 60_000);
    console.log(`Redis back after an outage: the ${whileDown.length} orders accepted meanwhile dispatched ${((performance.now() - backAt) / 1000).toFixed(1)} s later`);
    await expectDispatchedOnce(database.db, whileDown);
    const { repeatsCounted, stats } = await expectNotifiedOnce(database.db, fleet.provider, whileDown, 60_000);
    expect(stats.duplicates - before.duplicates, 'repeats the provider dropped').toBe(0);
    expect(repeatsCounted, 'calls beyond the first, by the ledger').toBe(0);
    expect(stats.deliveries - before.deliveries, 'messages delivered').toBe(whileDown.length * 2);
  }, 120_000);
});
