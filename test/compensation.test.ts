import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDb, type Db } from '../shared/db.ts';
import { createMetrics } from '../shared/metrics.ts';
import { budgetSpent, nextAttemptAt, retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { notificationJobId, priceJobId } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import { createOrderMaintenance, type OrderMaintenance } from '../workers/order-maintenance.ts';
import { seedOrders } from './support/seed-orders.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let pipeline: OrderPipeline | undefined;
const closers: (() => Promise<unknown> | void)[] = [];
const silent = pino({ level: 'silent' });

const FAR_MERCHANT = { id: '3001', zoneId: 'far-zone', lat: 31.9, lng: 121.9 };

beforeAll(async () => {
  web = await createTestWeb({ retryBaseMs: 40, retryMaxMs: 400, pricingAttemptBudget: 2, dispatchAttemptBudget: 2, dispatchWindowMs: 50 });
  await web.database.db('merchants').insert({ id: FAR_MERCHANT.id, name: 'Far Kitchen', zone_id: 'far-zone', lat: 31.9, lng: 121.9, address: 'x' });
  // The only rider of far-zone is 80 km from its merchant: every dispatch there fails.
  await web.database.db('riders').insert({ id: '8201', name: 'Far away', zone_id: 'far-zone', lat: 31.2, lng: 121.4, capacity: 3 });
});

afterAll(async () => {
  await pipeline?.close();
  for (const close of closers.reverse()) await close();
  await web?.close();
});

function queue(name: (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES]): Queue {
  const created = createQueue(name, { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
  closers.push(() => created.close());
  return created;
}

/** A compensator as one process has it: its own MySQL pool and Redis connection. */
function compensator(): { maintenance: OrderMaintenance; db: Db } {
  const db = createDb(web.config);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const maintenance = createOrderMaintenance(web.config, { db, redis, logger: silent });
  closers.push(async () => {
    await maintenance.close();
    redis.disconnect();
    await db.destroy();
  });
  return { maintenance, db };
}

async function events(db: Db, orderIds: readonly string[]) {
  return db('order_events').whereIn('order_id', orderIds).orderBy('id');
}

describe('the retry schedule', () => {
  it('backs off exponentially with equal jitter, up to its ceiling', () => {
    const policy = { baseMs: 1000, maxMs: 8000 };
    const at = (attempts: number, random: number) => nextAttemptAt(policy, attempts, 0, () => random).getTime();
    expect([0, 1, 2, 3, 4].map((n) => at(n, 0))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect([0, 1, 2, 3, 4].map((n) => at(n, 1))).toEqual([1000, 2000, 4000, 8000, 8000]);
    const policyOf = retryPolicyFrom(web.config);
    expect(budgetSpent(policyOf, 'PRICING_FAILED', 1)).toBe(false);
    expect(budgetSpent(policyOf, 'PRICING_FAILED', 2)).toBe(true);
  });
});

describe('compensation', () => {
  it('re-drives due orders back to their retry state, with an event and a job each, and leaves the others', async () => {
    const { db } = web.database;
    const due = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 3, nextAttemptInMs: -1000, lastError: 'pricing timed out' });
    const notYet = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 2, nextAttemptInMs: 3_600_000 });
    const dispatchDue = await seedOrders(db, { clientId: web.clientId, status: 'DISPATCH_FAILED', count: 2, nextAttemptInMs: -1000, merchant: FAR_MERCHANT });
    const { maintenance } = compensator();
    const outcome = await maintenance.compensate({ reason: 'cron' });
    expect(outcome.byStatus.PRICING_FAILED).toMatchObject({ found: 3, redriven: 3, escalated: 0 });
    expect(outcome.byStatus.DISPATCH_FAILED).toMatchObject({ found: 2, redriven: 2, escalated: 0 });

    const rows = await db('orders').whereIn('id', [...due, ...notYet, ...dispatchDue]);
    const byId = new Map(rows.map((row) => [String(row.id), row]));
    for (const id of due) expect(byId.get(id)).toMatchObject({ status: 'CREATED', attempts: 1, version: 2, next_attempt_at: null });
    for (const id of notYet) expect(byId.get(id)).toMatchObject({ status: 'PRICING_FAILED', attempts: 0, version: 1 });
    for (const id of dispatchDue) expect(byId.get(id)).toMatchObject({ status: 'PRICED', attempts: 1, version: 2 });

    const history = await events(db, [...due, ...dispatchDue]);
    expect(history.map((event) => `${event.from_status}->${event.to_status}`).sort()).toEqual([
      ...Array(2).fill('DISPATCH_FAILED->PRICED'),
      ...Array(3).fill('PRICING_FAILED->CREATED'),
    ]);
    expect(history.every((event) => event.actor === 'scheduler:compensate:cron' && /re-drive 1 of 2/.test(event.reason))).toBe(true);

    const orders = queue(QUEUE_NAMES.orders);
    const dispatch = queue(QUEUE_NAMES.dispatch);
    for (const id of due) expect((await orders.getJob(priceJobId(id, 1)))?.data).toEqual({ orderId: id });
    const dispatchJobs = await dispatch.getJobs(['waiting']);
    expect(dispatchJobs.map((job) => `${job.name} ${job.data.zoneId}`)).toEqual(['dispatch.zone far-zone']);
    await Promise.all([orders.drain(), dispatch.drain()]);
  });

  it('escalates an order past its budget: CANCELLED with the reason, an event, and the customer told (ledger row + job)', async () => {
    const { db } = web.database;
    const [spent] = await seedOrders(db, {
      clientId: web.clientId,
      status: 'DISPATCH_FAILED',
      count: 1,
      attempts: 2,
      nextAttemptInMs: -10,
      merchant: FAR_MERCHANT,
      lastError: 'no rider within 6000 m',
    });
    const lines: { msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const { maintenance } = compensator();
    const outcome = await maintenance.compensate({ reason: 'cron' }, { logger });
    expect(outcome.escalated).toBe(1);

    const row = await db('orders').where({ id: spent }).first();
    expect(row).toMatchObject({ status: 'CANCELLED', version: 2, attempts: 2, last_error: 'no rider within 6000 m', next_attempt_at: null });
    const [event] = await events(db, [spent!]);
    expect(event).toMatchObject({ from_status: 'DISPATCH_FAILED', to_status: 'CANCELLED', actor: 'scheduler:compensate:cron' });
    expect(event.reason).toMatch(/escalated: 2 re-drives of DISPATCH_FAILED spent; last error: no rider within 6000 m/);
    expect(await db('notifications').where({ order_id: spent, kind: 'customer.cancelled' }).first()).toMatchObject({ status: 'PENDING' });
    const notifications = queue(QUEUE_NAMES.notifications);
    expect((await notifications.getJob(notificationJobId(spent!, 'customer.cancelled')))?.data).toEqual({ orderId: spent, kind: 'customer.cancelled' });
    expect(lines.find((line) => /compensation: 1 due, 0 re-driven, 1 escalated/.test(line.msg))).toBeDefined();
    await notifications.drain();

    // Counted where the worker's /metrics shows it.
    const counted = createMetrics();
    const countingRedis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const withMetrics = createOrderMaintenance(web.config, { db: web.database.db, redis: countingRedis, logger: silent, metrics: counted });
    closers.push(async () => {
      await withMetrics.close();
      countingRedis.disconnect();
    });
    await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 2, attempts: 2, nextAttemptInMs: -10 });
    await withMetrics.compensate({ reason: 'cli' });
    expect(await counted.registry.getSingleMetricAsString('courier_compensation_orders_total')).toMatch(
      /courier_compensation_orders_total\{status="PRICING_FAILED",outcome="escalated"\} 2/,
    );
  });

  it('skips an order whose lock another writer holds, without waiting for it, and re-drives the rest', async () => {
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 3, nextAttemptInMs: -1000 });
    // Waiting for a lock would take a minute here (longer than this test may run).
    const patient = { ...web.config, lockWaitMs: 60_000 };
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const maintenance = createOrderMaintenance(patient, { db, redis, logger: silent });
    closers.push(async () => {
      await maintenance.close();
      redis.disconnect();
    });
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const holder = maintenance.writer.locks.withLock(ids[0]!, async () => {
      held();
      await holding;
    });
    await isHeld;
    const outcome = await maintenance.compensate({ reason: 'cron' });
    release();
    await holder;
    expect(outcome.byStatus.PRICING_FAILED).toMatchObject({ found: 3, redriven: 2, skipped: 1 });
    expect(await db('orders').whereIn('id', ids).orderBy('id').pluck('status')).toEqual(['PRICING_FAILED', 'CREATED', 'CREATED']);
    await queue(QUEUE_NAMES.orders).drain();
    await db('orders').whereIn('id', ids).delete(); // the next tests count due orders
  });

  it('two compensators at once re-drive each of 3,000 due orders exactly once', async () => {
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 3000, nextAttemptInMs: -1000 });
    const first = compensator();
    const second = compensator();
    const outcomes = await Promise.all([first.maintenance.compensate({ reason: 'cron' }), second.maintenance.compensate({ reason: 'cron' })]);
    console.log(
      `two compensators: ${outcomes.map((o) => `${o.redriven} re-driven (${o.byStatus.PRICING_FAILED.skipped} skipped as busy) in ${o.ms} ms`).join(' | ')}`,
    );
    expect(outcomes[0]!.redriven + outcomes[1]!.redriven).toBe(3000);

    const [moved] = await db('orders').whereIn('id', ids).where({ status: 'CREATED', attempts: 1, version: 2 }).count({ n: '*' });
    expect(Number(moved!.n)).toBe(3000);
    const perOrder = await db('order_events').whereIn('order_id', ids).groupBy('order_id').select('order_id').count({ n: '*' });
    expect(perOrder).toHaveLength(3000);
    expect(perOrder.every((row) => Number(row.n) === 1)).toBe(true);
    const orders = queue(QUEUE_NAMES.orders);
    expect(await orders.getJobCountByTypes('waiting')).toBe(3000);
    await orders.drain();
  });

  it('a budget exhausted into escalation, through the running pipeline: dispatch fails, is re-driven twice with backoff, then escalated', async () => {
    const { db } = web.database;
    pipeline = await startOrderPipeline(web.config, silent);
    await pipeline.worker.waitUntilReady();
    const id = await web.postOrder({ merchantId: FAR_MERCHANT.id });
    const { maintenance } = compensator();
    // The scheduler would tick; here the test runs compensation until the order settles.
    await vi.waitFor(
      async () => {
        await maintenance.compensate({ reason: 'cron' });
        expect((await db('orders').where({ id }).first()).status).toBe('CANCELLED');
      },
      { timeout: 20_000, interval: 50 },
    );
    const history = await events(db, [id]);
    expect(history.map((event) => event.to_status)).toEqual([
      'CREATED',
      'PRICED',
      'DISPATCH_FAILED',
      'PRICED',
      'DISPATCH_FAILED',
      'PRICED',
      'DISPATCH_FAILED',
      'CANCELLED',
    ]);
    expect(history.at(-1)!.reason).toMatch(/escalated: 2 re-drives of DISPATCH_FAILED spent; last error: no rider within 6000 m/);
    expect(await db('notifications').where({ order_id: id }).select('kind')).toEqual([{ kind: 'customer.cancelled' }]);
    // The cached copy moved with it (the batch goes through the cache routine too).
    expect(await web.runtime.writer.cache.get(id)).toMatchObject({ kind: 'hit', record: { order: { status: 'CANCELLED', version: 8 } } });
  });
});
