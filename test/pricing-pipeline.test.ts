import { Queue, QueueEvents } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { priceOrder } from '../shared/orders/pricing.ts';
import { seedOrders } from './support/seed-orders.ts';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let pipeline: OrderPipeline;

beforeAll(async () => {
  web = await createTestWeb();
  await web.database.db('riders').insert({ id: '7101', name: 'R', zone_id: 'test-zone', lat: 31.24, lng: 121.5 });
  pipeline = await startOrderPipeline(web.config, pino({ level: 'silent' }));
});

afterAll(async () => {
  await pipeline?.close();
  await web?.close();
});

describe('pricing', () => {
  it('prices by distance, items and the zone backlog', () => {
    const base = { pickup: { lat: 31.2397, lng: 121.4998 }, dropoff: { lat: 31.2304, lng: 121.4737 }, itemCount: 1 };
    const calm = priceOrder({ ...base, openOrdersInZone: 1, freeRidersInZone: 10 });
    expect(calm.distanceMeters).toBeGreaterThan(2500);
    expect(calm.distanceMeters).toBeLessThan(5000);
    expect(calm.surge).toBe(1);
    expect(calm.etaSeconds).toBeGreaterThan(600);
    const busy = priceOrder({ ...base, openOrdersInZone: 40, freeRidersInZone: 4 });
    expect(busy.surge).toBe(2.5);
    expect(busy.feeCents).toBeGreaterThan(calm.feeCents * 2);
  });

  it('an accepted order is priced by the worker (in a piscina thread): CREATED -> PRICED with fee and ETA', async () => {
    const id = await web.postOrder();
    await vi.waitFor(
      async () => {
        const row = await web.database.db('orders').where({ id }).first();
        expect(row.status).toBe('PRICED');
      },
      { timeout: 15_000, interval: 50 },
    );
    const row = await web.database.db('orders').where({ id }).first();
    expect(row.fee_cents).toBeGreaterThan(300);
    expect(row.eta_seconds).toBeGreaterThan(600);
    expect(row.version).toBe(2);
    const [event] = await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED', actor: 'worker:price' });
    expect(event.job_id).toBe(row.price_job_id); // priced by the batch the intake enqueued
  });

  it('a duplicated batch job has no second effect', async () => {
    const id = await web.postOrder();
    await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).toBe('PRICED'), {
      timeout: 15_000,
      interval: 50,
    });
    // The same batch again (put back as the reconciler does: its completed job, kept for the dashboard, is removed first): the worker runs it, and finds the order moved on.
    const events = new QueueEvents('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    try {
      await events.waitUntilReady();
      const completed = new Promise<{ jobId: string; returnvalue: unknown }>((resolve) => events.on('completed', resolve));
      const { price_job_id: carrier } = await web.database.db('orders').where({ id }).first();
      expect(await web.runtime.producer.queue('orders').getJobState(carrier)).toBe('completed');
      await web.runtime.producer.putBack('orders.price', { orderIds: [id], attempt: 0, batch: carrier.slice('price-'.length) });
      const event = await completed;
      expect(event.jobId).toBe(carrier);
      expect(event.returnvalue).toMatchObject({ priced: 0, movedOn: 1 });
    } finally {
      await events.close();
    }
    const row = await web.database.db('orders').where({ id }).first();
    expect(row.version).toBe(2);
    expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED' })).toHaveLength(1);
  });

  it('a per-order price job left in Redis by the pipeline before batches (order-<id>) is still run', async () => {
    const [id] = await seedOrders(web.database.db, { clientId: web.clientId, status: 'CREATED', count: 1 });
    const raw = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    try {
      await raw.add('order.price', { orderId: id }, { jobId: `order-${id}` });
    } finally {
      await raw.close();
    }
    await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).toBe('PRICED'), { timeout: 15_000, interval: 50 });
    expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED', job_id: `order-${id}` })).toHaveLength(1);
  });

  it('a malformed payload from a raw BullMQ producer fails at once with its reason, without retries', async () => {
    const raw = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    const events = new QueueEvents('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    try {
      await events.waitUntilReady();
      const failed = new Promise<{ jobId: string; failedReason: string }>((resolve) => events.on('failed', resolve));
      const job = await raw.add('orders.price', { orderIds: [42], attempt: 0 }, { attempts: 5 });
      const event = await failed;
      expect(event.jobId).toBe(job.id);
      expect(event.failedReason).toMatch(/malformed orders\.price payload: \/orderIds\/0 must be string/);
      const stored = await raw.getJob(job.id!);
      expect(stored?.attemptsMade).toBe(1);
      expect(await stored?.getState()).toBe('failed');
    } finally {
      await events.close();
      await raw.close();
    }
  });
});
