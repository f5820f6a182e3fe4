import { QueueEvents } from 'bullmq';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import { runScript, type Child } from './support/child-process.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestWeb, TEST_MERCHANT, type TestWeb } from './support/test-web.ts';

const JOB_LOCK_MS = 1000;
const SLOW_TASK_MS = 3 * JOB_LOCK_MS;

let web: TestWeb;
let events: QueueEvents;
let pipeline: OrderPipeline | undefined;
let child: Child | undefined;
const silent = pino({ level: 'silent' });

beforeAll(async () => {
  web = await createTestWeb({ jobLockMs: JOB_LOCK_MS });
  events = new QueueEvents('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
  await events.waitUntilReady();
});

afterEach(async () => {
  child?.kill();
  await child?.exited;
  await pipeline?.close();
  pipeline = undefined;
  child = undefined;
});

afterAll(async () => {
  await events?.close();
  await web?.close();
});

/** The price batch that carries an order (its row names it). */
async function priceJobOf(orderId: string): Promise<string> {
  return String((await web.database.db('orders').where({ id: orderId }).first()).price_job_id);
}

/** Posts an order and resolves with its id once its price batch is active on a worker. */
async function postAndWaitActive(): Promise<string> {
  const id = await web.postOrder();
  const jobId = await priceJobOf(id);
  // The slow thread keeps it active for far longer than the polling interval.
  await vi.waitFor(async () => expect(await web.runtime.producer.queue('orders').getJobState(jobId)).toBe('active'), { timeout: 20_000, interval: 20 });
  return id;
}

describe('a worker under stress', () => {
  it('a CPU-heavy step far longer than the job lock runs in a thread and does not cost the lock', async () => {
    process.env.SLOW_TASK_MS = String(SLOW_TASK_MS);
    const stalled: string[] = [];
    const onStalled = ({ jobId }: { jobId: string }) => stalled.push(jobId);
    events.on('stalled', onStalled);
    try {
      pipeline = await startOrderPipeline(web.config, silent, {
        priceTask: new URL('./support/slow-price-task.ts', import.meta.url).href,
      });
      const started = performance.now();
      const id = await web.postOrder();
      await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).toBe('PRICED'), { timeout: 20_000, interval: 20 });
      expect(performance.now() - started).toBeGreaterThanOrEqual(SLOW_TASK_MS - 100); // it really was slow
      expect(stalled).toEqual([]);
      expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED' })).toHaveLength(1);
    } finally {
      events.off('stalled', onStalled);
      delete process.env.SLOW_TASK_MS;
    }
  });

  it('price jobs stuck in a slow thread do not hold up a dispatch run: it has a queue, a worker and threads of its own', async () => {
    const { db } = web.database;
    await db('riders').insert({ id: '9901', name: 'Quick', zone_id: TEST_MERCHANT.zone_id, lat: TEST_MERCHANT.lat, lng: TEST_MERCHANT.lng, capacity: 5 });
    const [waiting] = await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 1 });
    process.env.SLOW_TASK_MS = String(SLOW_TASK_MS);
    const ordersQueue = web.runtime.producer.queue('orders');
    try {
      pipeline = await startOrderPipeline(web.config, silent, {
        priceTask: new URL('./support/slow-price-task.ts', import.meta.url).href,
      });
      const posted = [await web.postOrder(), await web.postOrder()];
      await vi.waitFor(async () => expect(await ordersQueue.getActiveCount()).toBe(2), { timeout: 10_000, interval: 20 });
      const pricingSince = performance.now();
      await web.runtime.producer.add('dispatch.zone', { zoneId: TEST_MERCHANT.zone_id, window: Date.now() });
      await vi.waitFor(async () => expect((await db('orders').where({ id: waiting }).first()).status).toBe('DISPATCHED'), {
        timeout: SLOW_TASK_MS,
        interval: 20,
      });
      // Dispatched while the price jobs were still in their thread.
      expect(performance.now() - pricingSince).toBeLessThan(SLOW_TASK_MS);
      expect(await db('orders').whereIn('id', posted).pluck('status')).toEqual(['CREATED', 'CREATED']);
    } finally {
      delete process.env.SLOW_TASK_MS;
    }
  });

  it('SIGTERM mid-job: the worker stops taking jobs, finishes the one in flight, and exits cleanly', async () => {
    child = runScript('test/support/slow-order-worker.ts', [], {
      MYSQL_URL: web.config.mysqlUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: web.config.queuePrefix,
      // Every worker of a queue must share the lock settings: BullMQ's stalled check runs at most
      // once per stalledInterval of whichever worker ran it last.
      JOB_LOCK_MS: String(JOB_LOCK_MS),
      SLOW_TASK_MS: '1500',
      SHUTDOWN_TIMEOUT_MS: '20000',
      LOG_LEVEL: 'info',
    });
    await child.waitForLine(/slow worker ready/, 20_000);
    const id = await postAndWaitActive();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit.code).toBe(0);
    expect(child.output()).toMatch(/stopped cleanly/);
    // Finished by the stopping worker itself, before it exited.
    expect((await web.database.db('orders').where({ id }).first()).status).not.toBe('CREATED');
    expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED' })).toHaveLength(1);
  });

  it('a worker killed with SIGKILL mid-job: another worker takes the job over and finishes it once', async () => {
    child = runScript('test/support/slow-order-worker.ts', [], {
      MYSQL_URL: web.config.mysqlUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: web.config.queuePrefix,
      JOB_LOCK_MS: String(JOB_LOCK_MS),
      SLOW_TASK_MS: '60000',
      LOG_LEVEL: 'info',
    });
    await child.waitForLine(/slow worker ready/, 20_000);
    const id = await postAndWaitActive();
    child.process.kill('SIGKILL');
    expect((await child.exited).signal).toBe('SIGKILL');
    expect((await web.database.db('orders').where({ id }).first()).status).toBe('CREATED');

    pipeline = await startOrderPipeline(web.config, silent);
    await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).not.toBe('CREATED'), {
      timeout: 20_000,
      interval: 100,
    });
    expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED' })).toHaveLength(1);
  });
});
