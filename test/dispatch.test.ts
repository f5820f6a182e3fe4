import munkres from 'munkres';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dispatchZoneJob, type DispatchZoneDeps } from '../jobs/dispatch-zone.ts';
import { ZoneLocks } from '../shared/cache/zone-locks.ts';
import type { MatchInput } from '../shared/orders/dispatch-matching.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import matchTask from '../workers/tasks/match-task.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let pipeline: OrderPipeline | undefined;
const silent = pino({ level: 'silent' });

beforeAll(async () => {
  web = await createTestWeb({ dispatchWindowMs: 100 });
  // Two other zones, with their own merchants: one for the capacity race, one with no rider near.
  await web.database.db('merchants').insert([
    { id: '2001', name: 'Race Kitchen', zone_id: 'race-zone', lat: 31.2, lng: 121.4, address: 'x' },
    { id: '3001', name: 'Far Kitchen', zone_id: 'far-zone', lat: 31.9, lng: 121.9, address: 'x' },
    { id: '4001', name: 'Lock Kitchen', zone_id: 'lock-zone', lat: 31.3, lng: 121.3, address: 'x' },
  ]);
  await web.database.db('riders').insert([
    { id: '8001', name: 'A', zone_id: 'test-zone', lat: 31.2398, lng: 121.4999, capacity: 3 },
    { id: '8101', name: 'R1', zone_id: 'race-zone', lat: 31.2001, lng: 121.4001, capacity: 2 },
    { id: '8102', name: 'R2', zone_id: 'race-zone', lat: 31.2002, lng: 121.4002, capacity: 2 },
    { id: '8103', name: 'R3', zone_id: 'race-zone', lat: 31.2003, lng: 121.4003, capacity: 2 },
    { id: '8201', name: 'Far away', zone_id: 'far-zone', lat: 31.2, lng: 121.4, capacity: 3 },
    { id: '8301', name: 'L1', zone_id: 'lock-zone', lat: 31.3001, lng: 121.3001, capacity: 10 },
  ]);
});

afterAll(async () => {
  await pipeline?.close();
  await web?.close();
});

async function priced(merchantId: string): Promise<string> {
  const id = await web.postOrder({ merchantId });
  const result = await transitionOrder(web.runtime.writer, { orderId: id, to: 'PRICED', patch: { fee_cents: 500, eta_seconds: 900 } }, { actor: 'test', waitMs: 1000 });
  expect(result.kind).toBe('done');
  return id;
}

function directDeps(overrides: Partial<DispatchZoneDeps> = {}): DispatchZoneDeps {
  return {
    db: web.database.db,
    writer: web.runtime.writer,
    match: async (input: MatchInput) => matchTask(input),
    dispatchAgain: async () => undefined,
    batchSize: 100,
    radiusMeters: 6000,
    retry: { baseMs: 30_000, maxMs: 900_000 },
    logger: silent,
    ...overrides,
  };
}

describe('matching', () => {
  it('munkres finds the cheapest assignment', () => {
    expect(munkres([[4, 1, 3], [2, 0, 5], [3, 2, 2]])).toEqual(expect.arrayContaining([[0, 1], [1, 0], [2, 2]]));
    expect(matchTask({ costs: [[Infinity, Infinity], [1, Infinity]] }).pairs).toEqual([[1, 0]]);
  });
});

describe('dispatch', () => {
  it('rider capacity is never exceeded and no order gets two riders under concurrent dispatch runs', async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, () => priced('2001')));
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => dispatchZoneJob({ zoneId: 'race-zone' }, directDeps())));
    const riders = await web.database.db('riders').where({ zone_id: 'race-zone' });
    const orders = await web.database.db('orders').whereIn('id', ids);
    for (const rider of riders) {
      const held = orders.filter((o) => o.status === 'DISPATCHED' && String(o.rider_id) === String(rider.id));
      expect(held.length).toBeLessThanOrEqual(rider.capacity);
      expect(rider.active_orders).toBe(held.length);
    }
    expect(orders.filter((o) => o.status === 'DISPATCHED')).toHaveLength(6); // 3 riders x 2 slots
    expect(outcomes.reduce((sum, o) => sum + o.dispatched, 0)).toBe(6);
    const events = await web.database.db('order_events').whereIn('order_id', ids).where({ to_status: 'DISPATCHED' });
    expect(events).toHaveLength(6); // one per dispatched order: nobody was dispatched twice
    for (const order of orders.filter((o) => o.status !== 'DISPATCHED')) {
      expect(order.status).toBe('DISPATCH_FAILED');
      expect(order.last_error).toBe('no free rider in range');
    }
  });

  it('one run per zone at a time: a run that finds its zone busy does nothing and books the next window', async () => {
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const zoneLock = new ZoneLocks(redis, { prefix: web.config.cachePrefix, lockTimeoutMs: 5000 });
      const ids = await Promise.all(Array.from({ length: 4 }, () => priced('4001')));
      const later: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      // The first run holds the zone while it solves its assignment...
      const slowMatch = async (input: MatchInput) => {
        entered();
        await held;
        return matchTask(input);
      };
      const first = dispatchZoneJob({ zoneId: 'lock-zone' }, directDeps({ zoneLock, match: slowMatch }));
      await inside;
      // ...so a second run of the zone does nothing but book the next window.
      const second = await dispatchZoneJob({ zoneId: 'lock-zone' }, directDeps({ zoneLock, dispatchLater: async (zoneId) => void later.push(zoneId) }));
      expect(second).toEqual({ considered: 0, dispatched: 0, failed: 0, deferred: 0, busy: true });
      expect(later).toEqual(['lock-zone']);
      release();
      expect(await first).toMatchObject({ considered: 4, dispatched: 4 });
      expect(await web.database.db('orders').whereIn('id', ids).pluck('status')).toEqual(['DISPATCHED', 'DISPATCHED', 'DISPATCHED', 'DISPATCHED']);
      // Free again: the next run takes the zone.
      expect((await dispatchZoneJob({ zoneId: 'lock-zone' }, directDeps({ zoneLock }))).busy).toBeUndefined();
    } finally {
      redis.disconnect();
    }
  });

  it('one run drains a backlog batch after batch, within its budget, and books another run only for what is left', async () => {
    await web.database.db('merchants').insert({ id: '5001', name: 'Bulk Kitchen', zone_id: 'bulk-zone', lat: 31.25, lng: 121.25, address: 'x' });
    await web.database.db('riders').insert(
      Array.from({ length: 6 }, (_, i) => ({ id: String(8501 + i), name: `B${i}`, zone_id: 'bulk-zone', lat: 31.25 + i / 10_000, lng: 121.25, capacity: 50 })),
    );
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await priced('5001'));
    const booked: string[] = [];
    const deps = directDeps({ batchSize: 10, maxBatchesPerRun: 2, dispatchAgain: async (zoneId) => void booked.push(zoneId) });

    // 25 waiting, batches of 10, two batches a run: 20 now, and another run owed for the rest.
    expect(await dispatchZoneJob({ zoneId: 'bulk-zone' }, deps)).toMatchObject({ considered: 20, dispatched: 20, failed: 0 });
    expect(booked).toEqual(['bulk-zone']);
    // The next run takes the last 5 in one batch that is not full: nothing more is owed.
    expect(await dispatchZoneJob({ zoneId: 'bulk-zone' }, deps)).toMatchObject({ considered: 5, dispatched: 5 });
    expect(booked).toEqual(['bulk-zone']);
    expect(await web.database.db('orders').whereIn('id', ids).where({ status: 'DISPATCHED' }).pluck('id')).toHaveLength(25);
  });

  it('an order with no rider in range goes to DISPATCH_FAILED with the reason', async () => {
    const id = await priced('3001');
    const outcome = await dispatchZoneJob({ zoneId: 'far-zone' }, directDeps());
    expect(outcome).toMatchObject({ considered: 1, dispatched: 0, failed: 1 });
    const row = await web.database.db('orders').where({ id }).first();
    expect(row.status).toBe('DISPATCH_FAILED');
    expect(row.last_error).toBe('no rider within 6000 m');
    expect(row.next_attempt_at).not.toBeNull();
  });

  it('the whole path through the worker: CREATED -> PRICED -> DISPATCHED -> PICKED_UP -> DELIVERED, with its notifications queued as one batch', async () => {
    pipeline = await startOrderPipeline(web.config, silent);
    const id = await web.postOrder();
    await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).toBe('DISPATCHED'), {
      timeout: 15_000,
      interval: 50,
    });
    const row = await web.database.db('orders').where({ id }).first();
    expect(String(row.rider_id)).toBe('8001');
    // The notifications the dispatch owed: ledger rows written with it, naming one batch job that carries both.
    const ledger = await web.database.db('notifications').where({ order_id: id }).orderBy('kind');
    expect(ledger.map((row) => [row.kind, row.status])).toEqual([
      ['customer.dispatched', 'PENDING'],
      ['merchant.dispatched', 'PENDING'],
    ]);
    expect(ledger[0].job_id).toBe(ledger[1].job_id);
    const notifications = new Queue('notifications', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    try {
      const job = await notifications.getJob(ledger[0].job_id);
      expect(job?.name).toBe('notify.batch');
      expect(job?.data.notifications).toEqual(
        expect.arrayContaining([
          { orderId: id, kind: 'customer.dispatched' },
          { orderId: id, kind: 'merchant.dispatched' },
        ]),
      );
    } finally {
      await notifications.close();
    }
    const jobs = await web.database.db('order_events').where({ order_id: id }).orderBy('version').select('to_status', 'job_id');
    expect(jobs[0]!.job_id).toMatch(/^price-/); // the intake's batch that carried it
    expect(jobs[1]!.job_id).toBe(jobs[0]!.job_id); // priced by that job
    expect(jobs[2]!.job_id).toMatch(/^dispatch-test-zone-/);
    for (const [type, status] of [['picked_up', 'PICKED_UP'], ['delivered', 'DELIVERED']] as const) {
      const res = await web.runtime.app.inject({
        method: 'POST',
        url: `/v1/orders/${id}/events`,
        headers: { authorization: `Bearer ${web.apiKey}` },
        payload: { type },
      });
      expect(res.json()).toMatchObject({ id, status });
    }
    // Redis stays bounded: a completed batch is kept for the dashboard, up to KEEP_COMPLETED_JOBS and KEEP_COMPLETED_SECONDS (MySQL holds the outcome).
    const orders = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
    try {
      const [completed] = await orders.getJobs(['completed']);
      expect(completed?.opts.removeOnComplete).toEqual({ count: web.config.keepCompletedJobs, age: web.config.keepCompletedSeconds });
    } finally {
      await orders.close();
    }
    const trail = await web.database.db('order_events').where({ order_id: id }).orderBy('version').pluck('to_status');
    expect(trail).toEqual(['CREATED', 'PRICED', 'DISPATCHED', 'PICKED_UP', 'DELIVERED']);
    expect((await web.database.db('riders').where({ id: '8001' }).first()).active_orders).toBe(0);
  });
});
