import { Worker, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { reconcileOrdersJob } from '../jobs/reconcile-orders.ts';
import { createOrderMaintenance, type OrderMaintenance } from '../workers/order-maintenance.ts';
import type { Config } from '../shared/config.ts';
import { seedOrders } from './support/seed-orders.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const silent = pino({ level: 'silent' });
const closers: (() => Promise<unknown> | void)[] = [];
const VIEWER = 'viewer-secret-retained';

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setUp(overrides: Partial<Config> = {}): Promise<{ web: TestWeb; maintenance: OrderMaintenance }> {
  const web = await createTestWeb({ dashboardViewerPassword: VIEWER, reconcileCreatedAfterMs: 2000, reconcileNotifyAfterMs: 2000, ...overrides });
  closers.push(() => web.close());
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const maintenance = createOrderMaintenance(web.config, { db: web.database.db, redis, logger: silent });
  closers.push(async () => {
    await maintenance.close();
    redis.disconnect();
  });
  return { web, maintenance };
}

/** Runs the jobs waiting on the queue with a handler that does nothing (a batch that gave up without a word), until `count` of them completed. */
async function completeJobs(web: TestWeb, queue: Queue, count: number): Promise<void> {
  let completed = 0;
  const worker = new Worker(queue.name, async () => ({ done: true }), { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix, autorun: false });
  try {
    const done = new Promise<void>((resolve) => worker.on('completed', () => ++completed === count && resolve()));
    void worker.run();
    await done;
  } finally {
    await worker.close();
  }
}

async function completedTitles(web: TestWeb, queue: string): Promise<string[]> {
  const res = await web.runtime.app.inject({
    method: 'GET',
    url: `/admin/queues/api/queues?activeQueue=${queue}&status=completed&jobsPerPage=50`,
    headers: { authorization: `Basic ${Buffer.from(`viewer:${VIEWER}`).toString('base64')}` },
  });
  const listed = (res.json().queues as { name: string; jobs: { name: string }[] }[]).find((q) => q.name === queue)!;
  return listed.jobs.map((job) => job.name);
}

describe('completed batch jobs kept for the dashboard', () => {
  it('stay visible with what they carried, at most KEEP_COMPLETED_JOBS of them, each carrying KEEP_COMPLETED_SECONDS as its age bound', async () => {
    const { web } = await setUp({ keepCompletedJobs: 2, keepCompletedSeconds: 600 });
    const { producer } = web.runtime;
    for (const first of ['101', '201', '301']) await producer.add('orders.price', { orderIds: [first, `${Number(first) + 1}`], attempt: 0 });
    await producer.add('notify.batch', { notifications: [{ orderId: '401', kind: 'customer.dispatched' }] });
    await completeJobs(web, producer.queue('orders'), 3);
    await completeJobs(web, producer.queue('notifications'), 1);

    const kept = await producer.queue('orders').getJobs(['completed']);
    expect(kept).toHaveLength(2); // the oldest of the three was dropped: the count bound
    for (const job of kept) expect(job.opts.removeOnComplete).toEqual({ count: 2, age: 600 });
    expect((await completedTitles(web, 'orders')).sort()).toEqual(['orders.price: 2 orders from 201, attempt 0', 'orders.price: 2 orders from 301, attempt 0']);
    expect(await completedTitles(web, 'notifications')).toEqual(['notify.batch: 1 notification for 1 order from 401']);
  });

  it('KEEP_COMPLETED_JOBS=0 removes a batch as it completes, as before', async () => {
    const { web } = await setUp({ keepCompletedJobs: 0 });
    const { producer } = web.runtime;
    await producer.add('orders.price', { orderIds: ['501'], attempt: 0 });
    await completeJobs(web, producer.queue('orders'), 1);
    await vi.waitFor(async () => expect(await producer.queue('orders').getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 0, waiting: 0, active: 0 }), {
      timeout: 5000,
      interval: 20,
    });
  });
});

describe('the reconciler with completed batches kept', () => {
  it('leaves orders a kept price batch moved on; records PRICING_FAILED for orders a completed batch left CREATED (it gave up), and puts nothing back', async () => {
    const { web, maintenance } = await setUp();
    const { db } = web.database;
    const orders = web.runtime.producer.queue('orders');
    const moved = await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 2, updatedAgoMs: 5000, priceJobId: 'price-done-2-a0' });
    const left = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 3, updatedAgoMs: 5000, priceJobId: 'price-quit-3-a0' });
    await orders.add('orders.price', { orderIds: moved, attempt: 0, batch: 'done-2-a0' }, { jobId: 'price-done-2-a0' });
    await orders.add('orders.price', { orderIds: left, attempt: 0, batch: 'quit-3-a0' }, { jobId: 'price-quit-3-a0' });
    await completeJobs(web, orders, 2);

    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.created).toEqual({ checked: 3, enqueued: 0, live: 0, finished: 3 });
    const rows = await db('orders').whereIn('id', [...moved, ...left]).select('id', 'status', 'last_error');
    for (const row of rows) expect(row.status).toBe(moved.includes(String(row.id)) ? 'PRICED' : 'PRICING_FAILED');
    // Both batches are still there, completed: neither was removed nor put back.
    expect(await orders.getJobState('price-done-2-a0')).toBe('completed');
    expect(await orders.getJobState('price-quit-3-a0')).toBe('completed');
    expect(await orders.getJobCountByTypes('waiting', 'delayed')).toBe(0);
  });

  it('leaves orders alone that a kept batch moves on while the reconciler looks (read CREATED, PRICED by the time it acts)', async () => {
    const { web, maintenance } = await setUp();
    const { db } = web.database;
    const orders = web.runtime.producer.queue('orders');
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 2, updatedAgoMs: 5000, priceJobId: 'price-race-2-a0' });
    await orders.add('orders.price', { orderIds: ids, attempt: 0, batch: 'race-2-a0' }, { jobId: 'price-race-2-a0' });
    await completeJobs(web, orders, 1);
    const { producer } = maintenance;
    await reconcileOrdersJob(
      { reason: 'cron' },
      {
        db,
        writer: maintenance.writer,
        // The batch's worker commits the orders between the reconciler's read and its lookup.
        producer: {
          lookUp: async (queue, jobIds) => {
            await db('orders').whereIn('id', ids).update({ status: 'PRICED', version: db.raw('version + 1') });
            return producer.lookUp(queue, jobIds);
          },
          putBack: (name, payload) => producer.putBack(name, payload),
        },
        dispatchNow: async () => undefined,
        retry: { baseMs: 1000, maxMs: 1000 },
        createdAfterMs: 2000,
        stuckAfterMs: 3_600_000,
        notifyAfterMs: 3_600_000,
        notifyAttemptBudget: 3,
        batchSize: 100,
        logger: silent,
      },
    );
    expect((await db('orders').whereIn('id', ids).pluck('status')).sort()).toEqual(['PRICED', 'PRICED']);
    expect(await db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICING_FAILED' })).toHaveLength(0);
    expect(await orders.getJobState('price-race-2-a0')).toBe('completed');
  });

  it('puts a completed notification batch whose rows are still PENDING back under its id, as it does a lost one', async () => {
    const { web, maintenance } = await setUp();
    const { db } = web.database;
    const notifications = web.runtime.producer.queue('notifications');
    const [orderId] = await seedOrders(db, { clientId: web.clientId, status: 'DISPATCHED', count: 1 });
    const jobId = await web.runtime.producer.add('notify.batch', { notifications: [{ orderId: orderId!, kind: 'customer.dispatched' }] });
    await completeJobs(web, notifications, 1);
    await db('notifications').insert({
      order_id: orderId,
      kind: 'customer.dispatched',
      status: 'PENDING',
      attempts: 1,
      job_id: jobId,
      updated_at: db.raw('CURRENT_TIMESTAMP(3) - INTERVAL 5 SECOND'),
    });
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.notifications).toEqual({ checked: 1, enqueued: 1, live: 0, givenUp: 0 });
    expect(await notifications.getJobState(jobId)).toBe('waiting');
  });
});
