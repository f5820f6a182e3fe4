import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../shared/config.ts';
import { createDb, type Db } from '../shared/db.ts';
import { createMaintenanceMetrics, type MaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import { createRegistry } from '../shared/metrics/registry.ts';
import { budgetSpent, nextAttemptAt, retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import { startOrderPipeline } from '../workers/order-pipeline.ts';
import { createOrderMaintenance, type OrderMaintenance } from '../workers/order-maintenance.ts';
import { seedOrders } from './support/seed-orders.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const silent = pino({ level: 'silent' });
const FAR_MERCHANT = { id: '3001', zoneId: 'far-zone', lat: 31.9, lng: 121.9 };
const SETTINGS: Partial<Config> = { retryBaseMs: 40, retryMaxMs: 400, pricingAttemptBudget: 2, dispatchAttemptBudget: 2, dispatchWindowMs: 50 };

/** What each test closes, whatever happens in it (each test seeds and owns its own database and prefix). */
const closers: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function testWeb(overrides: Partial<Config> = {}): Promise<TestWeb> {
  const web = await createTestWeb({ ...SETTINGS, ...overrides });
  closers.push(() => web.close());
  await web.database.db('merchants').insert({ id: FAR_MERCHANT.id, name: 'Far Kitchen', zone_id: 'far-zone', lat: 31.9, lng: 121.9, address: 'x' });
  // The only rider of far-zone is 80 km from its merchant: every dispatch there fails.
  await web.database.db('riders').insert({ id: '8201', name: 'Far away', zone_id: 'far-zone', lat: 31.2, lng: 121.4, capacity: 3 });
  return web;
}

/** A compensator as one process has it: its own MySQL pool and Redis connection. */
function compensator(config: Config, metrics?: MaintenanceMetrics): OrderMaintenance {
  const db = createDb(config);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const maintenance = createOrderMaintenance(config, { db, redis, logger: silent, ...(metrics ? { metrics } : {}) });
  closers.push(async () => {
    await maintenance.close();
    redis.disconnect();
    await db.destroy();
  });
  return maintenance;
}

const events = (db: Db, orderIds: readonly string[]) => db('order_events').whereIn('order_id', orderIds).orderBy('id');

describe('the retry schedule', () => {
  it('backs off exponentially with equal jitter, up to its ceiling', () => {
    const policy = { baseMs: 1000, maxMs: 8000 };
    const at = (attempts: number, random: number) => nextAttemptAt(policy, attempts, 0, () => random).getTime();
    expect([0, 1, 2, 3, 4].map((n) => at(n, 0))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect([0, 1, 2, 3, 4].map((n) => at(n, 1))).toEqual([1000, 2000, 4000, 8000, 8000]);
    const policyOf = retryPolicyFrom({ retryBaseMs: 1, retryMaxMs: 1, pricingAttemptBudget: 2, dispatchAttemptBudget: 5 });
    expect(budgetSpent(policyOf, 'PRICING_FAILED', 1)).toBe(false);
    expect(budgetSpent(policyOf, 'PRICING_FAILED', 2)).toBe(true);
  });
});

describe('compensation', () => {
  it('re-drives due orders back to their retry state, with an event each, one price batch and one zone run, and leaves the others', async () => {
    const web = await testWeb();
    const { db } = web.database;
    const due = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 3, nextAttemptInMs: -1000, lastError: 'pricing timed out' });
    const notYet = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 2, nextAttemptInMs: 3_600_000 });
    const dispatchDue = await seedOrders(db, { clientId: web.clientId, status: 'DISPATCH_FAILED', count: 2, nextAttemptInMs: -1000, merchant: FAR_MERCHANT });
    const outcome = await compensator(web.config).compensate({ reason: 'cron' });
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

    // The three re-driven to CREATED ride in one price batch (attempt 1), which their rows name.
    const jobIds = new Set(due.map((id) => String(byId.get(id)!.price_job_id)));
    expect([...jobIds]).toEqual([`price-${due[0]}-3-a1`]);
    const orders = web.runtime.producer.queue('orders');
    expect((await orders.getJob([...jobIds][0]!))?.data).toEqual({ orderIds: due, attempt: 1 });
    const dispatchJobs = await web.runtime.producer.queue('dispatch').getJobs(['waiting']);
    expect(dispatchJobs.map((job) => `${job.name} ${job.data.zoneId}`)).toEqual(['dispatch.zone far-zone']);
  });

  it('escalates an order past its budget: CANCELLED with the reason, an event, and the customer told (ledger row + batch job)', async () => {
    const web = await testWeb();
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
    const registry = createRegistry();
    const metrics = { registry, ...createMaintenanceMetrics(registry) };
    const outcome = await compensator(web.config, metrics).compensate({ reason: 'cron' }, { logger });
    expect(outcome.escalated).toBe(1);

    const row = await db('orders').where({ id: spent }).first();
    expect(row).toMatchObject({ status: 'CANCELLED', version: 2, attempts: 2, last_error: 'no rider within 6000 m', next_attempt_at: null });
    const [event] = await events(db, [spent!]);
    expect(event).toMatchObject({ from_status: 'DISPATCH_FAILED', to_status: 'CANCELLED', actor: 'scheduler:compensate:cron' });
    expect(event.reason).toMatch(/escalated: 2 re-drives of DISPATCH_FAILED spent; last error: no rider within 6000 m/);
    const ledger = await db('notifications').where({ order_id: spent, kind: 'customer.cancelled' }).first();
    expect(ledger).toMatchObject({ status: 'PENDING' });
    expect((await web.runtime.producer.queue('notifications').getJob(ledger.job_id))?.data).toEqual({ notifications: [{ orderId: spent, kind: 'customer.cancelled' }] });
    expect(lines.find((line) => /compensation: 1 due, 0 re-driven, 1 escalated/.test(line.msg))).toBeDefined();
    // Counted where the worker's /metrics shows it.
    expect(await metrics.registry.getSingleMetricAsString('courier_compensation_orders_total')).toMatch(
      /courier_compensation_orders_total\{status="DISPATCH_FAILED",outcome="escalated"\} 1/,
    );
  });

  it('skips an order whose lock another writer holds, without waiting for it, and re-drives the rest', async () => {
    // Waiting for a lock would take a minute here (longer than this test may run).
    const web = await testWeb({ lockWaitMs: 60_000 });
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 3, nextAttemptInMs: -1000 });
    const maintenance = compensator(web.config);
    const held = await maintenance.writer.locks.lock([ids[0]!], { waitMs: 0 });
    let outcome;
    try {
      outcome = await maintenance.compensate({ reason: 'cron' });
    } finally {
      await held.release();
    }
    expect(outcome.byStatus.PRICING_FAILED).toMatchObject({ found: 3, redriven: 2, skipped: 1 });
    expect(await db('orders').whereIn('id', ids).orderBy('id').pluck('status')).toEqual(['PRICING_FAILED', 'CREATED', 'CREATED']);
  });

  it('two compensators at once re-drive each of 600 due orders exactly once, batch after batch', async () => {
    const web = await testWeb({ maintenanceBatchSize: 100 });
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'PRICING_FAILED', count: 600, nextAttemptInMs: -1000 });
    const outcomes = await Promise.all([compensator(web.config).compensate({ reason: 'cron' }), compensator(web.config).compensate({ reason: 'cron' })]);
    // One that met the other's locks may stop early; a next tick takes what is left, as the scheduler would.
    const again = await compensator(web.config).compensate({ reason: 'cron' });
    expect(outcomes[0]!.redriven + outcomes[1]!.redriven + again.redriven).toBe(600);

    const [moved] = await db('orders').whereIn('id', ids).where({ status: 'CREATED', attempts: 1, version: 2 }).count({ n: '*' });
    expect(Number(moved!.n)).toBe(600);
    const perOrder = await db('order_events').whereIn('order_id', ids).groupBy('order_id').select('order_id').count({ n: '*' });
    expect(perOrder).toHaveLength(600);
    expect(perOrder.every((row) => Number(row.n) === 1)).toBe(true);
    // A price batch per compensation batch, not a job per order; every order rides in exactly one.
    const jobs = await web.runtime.producer.queue('orders').getJobs(['waiting']);
    expect(jobs.length).toBeLessThanOrEqual(12);
    expect(jobs.flatMap((job) => job.data.orderIds as string[]).sort()).toEqual([...ids].sort());
  });

  it('a budget exhausted into escalation, through the running pipeline: dispatch fails, is re-driven twice with backoff, then escalated', async () => {
    const web = await testWeb();
    const { db } = web.database;
    const pipeline = await startOrderPipeline(web.config, silent);
    closers.push(() => pipeline.close());
    await pipeline.worker.waitUntilReady();
    const id = await web.postOrder({ merchantId: FAR_MERCHANT.id });
    // A reader has it cached: its entry follows every change.
    await web.runtime.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: { authorization: `Bearer ${web.apiKey}` } });
    const maintenance = compensator(web.config);
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
    expect(await web.runtime.writer.cache.get(id)).toMatchObject({ kind: 'hit', record: { order: { status: 'CANCELLED', version: 8 } } });
  });
});
