import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NotificationKind } from '../shared/notifications/kinds.ts';
import { priceBatchJobId } from '../shared/queues/job-ids.ts';
import { startOrderPipeline } from '../workers/order-pipeline.ts';
import { createOrderMaintenance, type OrderMaintenance } from '../workers/order-maintenance.ts';
import { seedOrders } from './support/seed-orders.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const silent = pino({ level: 'silent' });
const closers: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A database, queues and a reconciler of the test's own: each test starts from what it seeds. */
async function setUp(): Promise<{ web: TestWeb; maintenance: OrderMaintenance; orders: Queue; dispatch: Queue; notifications: Queue }> {
  const web = await createTestWeb({
    reconcileCreatedAfterMs: 2000,
    reconcileStuckAfterMs: 2000,
    reconcileNotifyAfterMs: 2000,
    notifyAttemptBudget: 3,
    maintenanceBatchSize: 50,
    dispatchWindowMs: 50,
  });
  closers.push(() => web.close());
  await web.database.db('merchants').insert({ id: '2001', name: 'Other Kitchen', zone_id: 'other-zone', lat: 31.2, lng: 121.4, address: 'x' });
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const maintenance = createOrderMaintenance(web.config, { db: web.database.db, redis, logger: silent });
  closers.push(async () => {
    await maintenance.close();
    redis.disconnect();
  });
  const { producer } = web.runtime;
  return { web, maintenance, orders: producer.queue('orders'), dispatch: producer.queue('dispatch'), notifications: producer.queue('notifications') };
}

/** A job that ran and failed for good, kept in the failed set under its id (as BullMQ keeps failed jobs). */
async function failedJob(web: TestWeb, target: Queue, name: string, data: object, jobId: string): Promise<void> {
  const worker = new Worker(
    target.name,
    async () => {
      throw new UnrecoverableError('it gave up');
    },
    { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix },
  );
  try {
    const failed = new Promise<void>((resolve) => worker.on('failed', (job) => job?.id === jobId && resolve()));
    await target.add(name, data, { jobId, attempts: 1, removeOnFail: false });
    await failed;
  } finally {
    await worker.close();
  }
  expect(await target.getJobState(jobId)).toBe('failed');
}

async function ledgerRow(web: TestWeb, orderId: string, kind: NotificationKind, opts: { attempts?: number; agoMs?: number; status?: string; jobId?: string } = {}) {
  await web.database.db('notifications').insert({
    order_id: orderId,
    kind,
    status: opts.status ?? 'PENDING',
    attempts: opts.attempts ?? 0,
    job_id: opts.jobId ?? null,
    updated_at: web.database.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [(opts.agoMs ?? 5000) * 1000]),
  });
}

describe('the reconciler', () => {
  it('puts a lost price batch back whole under the id its rows name, once, and not fresh ones; the pipeline then prices each once', async () => {
    const { web, maintenance, orders } = await setUp();
    const { db } = web.database;
    // 120 orders of one lost batch, read over three pages of 50: the batch is put back whole.
    const orphans = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 120, updatedAgoMs: 5000, priceJobId: 'price-lost-120-a0' });
    const fresh = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 3, priceJobId: 'price-fresh-3-a0' });

    const first = await maintenance.reconcile({ reason: 'cron' });
    expect(first.created).toEqual({ checked: 120, enqueued: 120, live: 0, finished: 0 });
    expect((await orders.getJob('price-lost-120-a0'))?.data).toEqual({ orderIds: orphans, attempt: 0, batch: 'lost-120-a0' });
    expect(await orders.getJob('price-fresh-3-a0')).toBeUndefined();
    expect(await orders.getJobCountByTypes('waiting')).toBe(1);

    // Run again while the job waits: a live job is never doubled.
    const second = await maintenance.reconcile({ reason: 'cron' });
    expect(second.created).toEqual({ checked: 120, enqueued: 0, live: 120, finished: 0 });
    expect(await orders.getJobCountByTypes('waiting')).toBe(1);

    const pipeline = await startOrderPipeline(web.config, silent);
    closers.push(() => pipeline.close());
    await vi.waitFor(
      async () => {
        const [row] = await db('orders').whereIn('id', orphans).whereNot({ status: 'CREATED' }).count({ n: '*' });
        expect(Number(row!.n)).toBe(120);
      },
      { timeout: 20_000, interval: 50 },
    );
    const priced = await db('order_events').whereIn('order_id', orphans).where({ to_status: 'PRICED' }).groupBy('order_id').select('order_id').count({ n: '*' });
    expect(priced).toHaveLength(120);
    expect(priced.every((row) => Number(row.n) === 1)).toBe(true);
    expect(fresh).toHaveLength(3);
  });

  it('gives CREATED orders that name no batch (written before batch jobs) batches of their own, at most a page each, whose ids they then carry', async () => {
    const { web, maintenance, orders } = await setUp();
    const { db } = web.database;
    const old = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 120, updatedAgoMs: 5000 });
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.created).toMatchObject({ checked: 120, enqueued: 120 });
    // MAINTENANCE_BATCH_SIZE is 50 here: three batches, 50 + 50 + 20, each order in exactly one.
    const expected = [old.slice(0, 50), old.slice(50, 100), old.slice(100)].map((ids) => priceBatchJobId(ids, 0));
    const jobs = await orders.getJobs(['waiting']);
    expect(jobs.map((job) => job.id).sort()).toEqual([...expected].sort());
    expect(jobs.flatMap((job) => job.data.orderIds as string[]).sort()).toEqual([...old].sort());
    const named = await db('orders').whereIn('id', old).select('id', 'price_job_id');
    for (const row of named) expect(expected).toContain(row.price_job_id);
    // Next time round the batches are live: nothing more.
    expect((await maintenance.reconcile({ reason: 'cron' })).created).toEqual({ checked: 120, enqueued: 0, live: 120, finished: 0 });
  });

  it('gives PENDING notifications that name no batch one of their own, naming exactly those rows', async () => {
    const { web, maintenance, notifications } = await setUp();
    const [a, b] = (await seedOrders(web.database.db, { clientId: web.clientId, status: 'DISPATCHED', count: 2 })) as [string, string];
    await ledgerRow(web, a, 'customer.dispatched');
    await ledgerRow(web, b, 'merchant.dispatched');
    await ledgerRow(web, a, 'merchant.dispatched', { agoMs: 0 }); // not past the timeout: not in this batch, though its order and kind are
    expect((await maintenance.reconcile({ reason: 'cron' })).notifications).toMatchObject({ checked: 2, enqueued: 2 });
    const rows = await web.database.db('notifications').whereIn('order_id', [a, b]);
    const jobOf = (orderId: string, kind: string) => rows.find((row) => String(row.order_id) === orderId && row.kind === kind).job_id;
    const jobId = jobOf(a, 'customer.dispatched');
    expect(jobId).toMatch(/^notify-/);
    expect(jobOf(b, 'merchant.dispatched')).toBe(jobId);
    expect(jobOf(a, 'merchant.dispatched')).toBeNull();
    expect((await notifications.getJob(jobId))?.data.notifications).toEqual([
      { orderId: a, kind: 'customer.dispatched' },
      { orderId: b, kind: 'merchant.dispatched' },
    ]);
  });

  it('records PRICING_FAILED for the CREATED orders of a price batch that failed for good, so compensation takes them with their budget', async () => {
    const { web, maintenance, orders } = await setUp();
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 2, updatedAgoMs: 5000, priceJobId: 'price-gaveup-2-a0' });
    await failedJob(web, orders, 'orders.price', { orderIds: ids, attempt: 0 }, 'price-gaveup-2-a0');
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.created).toEqual({ checked: 2, enqueued: 0, live: 0, finished: 2 });
    for (const row of await db('orders').whereIn('id', ids)) {
      expect(row.status).toBe('PRICING_FAILED');
      expect(row.next_attempt_at).not.toBeNull();
    }
    expect(await db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICING_FAILED', actor: 'scheduler:reconcile' })).toHaveLength(2);
  });

  it('books one dispatch run per zone for PRICED orders left waiting past the timeout', async () => {
    const { web, maintenance, orders, dispatch } = await setUp();
    const { db } = web.database;
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 5, updatedAgoMs: 5000 });
    const other = { id: '2001', zoneId: 'other-zone', lat: 31.2, lng: 121.4 };
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 2, updatedAgoMs: 5000, merchant: other });
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 2, merchant: { ...other, zoneId: 'fresh-zone' } });
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.priced).toEqual({ stuck: 7, zones: 2 });
    const runs = await dispatch.getJobs(['waiting']);
    expect(await orders.getJobCountByTypes('waiting', 'delayed')).toBe(0);
    expect(runs.map((job) => `${job.name} ${job.data.zoneId}`).sort()).toEqual(['dispatch.zone other-zone', 'dispatch.zone test-zone']);
  });

  it('puts back PENDING notifications whose batch is gone or failed, under its id; leaves live ones and spent ones, and never touches SENT', async () => {
    const { web, maintenance, notifications } = await setUp();
    const ids = await seedOrders(web.database.db, { clientId: web.clientId, status: 'DISPATCHED', count: 7 });
    const [lost, lostToo, failed, live, spent, sent, fresh] = ids as [string, string, string, string, string, string, string];
    await ledgerRow(web, lost, 'customer.dispatched', { jobId: 'notify-lost' });
    await ledgerRow(web, lostToo, 'merchant.dispatched', { jobId: 'notify-lost' });
    await ledgerRow(web, failed, 'customer.dispatched', { attempts: 1, jobId: 'notify-failed' });
    await failedJob(web, notifications, 'notify.batch', { notifications: [{ orderId: failed, kind: 'customer.dispatched' }] }, 'notify-failed');
    await ledgerRow(web, live, 'merchant.dispatched', { jobId: 'notify-live' });
    await notifications.add('notify.batch', { notifications: [{ orderId: live, kind: 'merchant.dispatched' }] }, { jobId: 'notify-live', delay: 60_000 });
    await ledgerRow(web, spent, 'customer.dispatched', { attempts: 3, jobId: 'notify-spent' });
    await ledgerRow(web, sent, 'customer.dispatched', { status: 'SENT', attempts: 1, jobId: 'notify-sent' });
    await ledgerRow(web, fresh, 'customer.dispatched', { agoMs: 0, jobId: 'notify-fresh' });

    const dry = await maintenance.reconcile({ reason: 'cli' }, { dryRun: true });
    expect(dry.notifications).toEqual({ checked: 5, enqueued: 3, live: 1, givenUp: 1 });
    expect(await notifications.getJobCounts('waiting', 'delayed', 'failed')).toEqual({ waiting: 0, delayed: 1, failed: 1 });

    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.notifications).toEqual({ checked: 5, enqueued: 3, live: 1, givenUp: 1 });
    expect(await notifications.getJobState('notify-lost')).toBe('waiting');
    expect((await notifications.getJob('notify-lost'))?.data.notifications).toEqual([
      { orderId: lost, kind: 'customer.dispatched' },
      { orderId: lostToo, kind: 'merchant.dispatched' },
    ]);
    expect(await notifications.getJobState('notify-failed')).toBe('waiting');
    expect(await notifications.getJobState('notify-live')).toBe('delayed');
    for (const untouched of ['notify-spent', 'notify-sent', 'notify-fresh']) expect(await notifications.getJobState(untouched)).toBe('unknown');
  });

  it('a dry run reports what it would do and changes nothing', async () => {
    const { web, maintenance, orders, dispatch } = await setUp();
    const { db } = web.database;
    await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 4, updatedAgoMs: 5000 });
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 1, updatedAgoMs: 5000 });
    const before = await db('orders').select('id', 'status', 'version', 'price_job_id').orderBy('id');
    const outcome = await maintenance.reconcile({ reason: 'cli' }, { dryRun: true });
    expect(outcome).toMatchObject({ dryRun: true, created: { enqueued: 4 }, priced: { stuck: 1, zones: 1 } });
    expect(await db('orders').select('id', 'status', 'version', 'price_job_id').orderBy('id')).toEqual(before);
    expect(await orders.getJobCountByTypes('waiting', 'delayed', 'failed')).toBe(0);
    expect(await dispatch.getJobCountByTypes('waiting', 'delayed', 'failed')).toBe(0);
  });
  it('a run stopped by a failing step still logs what the steps before it put back, and fails', async () => {
    const { web, maintenance, orders } = await setUp();
    const { db } = web.database;
    await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 5, updatedAgoMs: 5000, priceJobId: 'price-lost-5-a0' });
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    // The last step (the ledger) fails: its table is away.
    await db.schema.renameTable('notifications', 'notifications_away');
    try {
      await expect(maintenance.reconcile({ reason: 'cron' }, { logger })).rejects.toThrow(/notifications/);
    } finally {
      await db.schema.renameTable('notifications_away', 'notifications');
    }
    expect(await orders.getJob('price-lost-5-a0'), 'the lost batch was put back before the failure').toBeTruthy();
    const runs = lines.filter((line) => String(line.msg).startsWith('reconcile:'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ level: 40, stoppedEarly: true, created: { enqueued: 5 }, notifications: { enqueued: 0 } });
    expect(String(runs[0]!.msg)).toMatch(/^reconcile: 5 CREATED orders enqueued again, .* \(stopped early: .*notifications/);
  });
});
