import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createQueue } from '../shared/queues/create-queue.ts';
import { notificationJobId, orderJobId, type NotificationKind } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES, type QueueName } from '../shared/queues/queue-names.ts';
import { startOrderPipeline } from '../workers/order-pipeline.ts';
import { createOrderMaintenance, type OrderMaintenance } from '../workers/order-maintenance.ts';
import { seedOrders } from './support/seed-orders.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let redis: Redis;
let maintenance: OrderMaintenance;
let orders: Queue;
let dispatch: Queue;
let notifications: Queue;
const silent = pino({ level: 'silent' });

beforeAll(async () => {
  web = await createTestWeb({
    reconcileCreatedAfterMs: 2000,
    reconcileStuckAfterMs: 2000,
    reconcileNotifyAfterMs: 2000,
    notifyAttemptBudget: 3,
    maintenanceBatchSize: 50,
    dispatchWindowMs: 50,
  });
  await web.database.db('merchants').insert({ id: '2001', name: 'Other Kitchen', zone_id: 'other-zone', lat: 31.2, lng: 121.4, address: 'x' });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  maintenance = createOrderMaintenance(web.config, { db: web.database.db, redis, logger: silent });
  orders = queue(QUEUE_NAMES.orders);
  dispatch = queue(QUEUE_NAMES.dispatch);
  notifications = queue(QUEUE_NAMES.notifications);
});

const queues: Queue[] = [];
function queue(name: QueueName): Queue {
  const created = createQueue(name, { connection: { url: TEST_REDIS_URL }, prefix: web.config.queuePrefix });
  queues.push(created);
  return created;
}

afterAll(async () => {
  await maintenance?.close();
  for (const created of queues) await created.close();
  redis?.disconnect();
  await web?.close();
});

beforeEach(async () => {
  // Each test starts from what it seeds: no order or notification left over from another.
  await web.database.db('notifications').delete();
  await web.database.db('order_events').delete();
  await web.database.db('orders').delete();
  await orders.obliterate({ force: true });
  await dispatch.obliterate({ force: true });
  await notifications.obliterate({ force: true });
});

/** A job that ran and failed for good, kept in the failed set under its id (as BullMQ keeps failed jobs). */
async function failedJob(target: Queue, name: string, data: object, jobId: string): Promise<void> {
  const worker = new Worker(
    target.name,
    async () => {
      throw new UnrecoverableError('provider rejected it');
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

async function ledgerRow(orderId: string, kind: NotificationKind, opts: { attempts?: number; agoMs?: number; status?: string } = {}) {
  await web.database.db('notifications').insert({
    order_id: orderId,
    kind,
    status: opts.status ?? 'PENDING',
    attempts: opts.attempts ?? 0,
    updated_at: web.database.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [(opts.agoMs ?? 5000) * 1000]),
  });
}

describe('the reconciler', () => {
  it('enqueues CREATED orders that lost their job, once, and not the fresh ones; the pipeline then prices each once', async () => {
    const { db } = web.database;
    const orphans = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 120, updatedAgoMs: 5000 });
    const fresh = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 3 });

    const first = await maintenance.reconcile({ reason: 'cron' });
    expect(first.created).toEqual({ checked: 120, enqueued: 120, live: 0, finished: 0 });
    for (const id of [orphans[0]!, orphans[119]!]) expect((await orders.getJob(orderJobId(id)))?.data).toEqual({ orderId: id });
    for (const id of fresh) expect(await orders.getJob(orderJobId(id))).toBeUndefined();

    // Run again while the jobs wait: a live job is never doubled.
    const second = await maintenance.reconcile({ reason: 'cron' });
    expect(second.created).toEqual({ checked: 120, enqueued: 0, live: 120, finished: 0 });
    expect(await orders.getJobCountByTypes('waiting')).toBe(120);

    const pipeline = await startOrderPipeline(web.config, silent);
    try {
      await vi.waitFor(
        async () => {
          const [row] = await db('orders').whereIn('id', orphans).whereNot({ status: 'CREATED' }).count({ n: '*' });
          expect(Number(row!.n)).toBe(120);
        },
        { timeout: 20_000, interval: 50 },
      );
    } finally {
      await pipeline.close();
    }
    const priced = await db('order_events').whereIn('order_id', orphans).where({ to_status: 'PRICED' }).groupBy('order_id').select('order_id').count({ n: '*' });
    expect(priced).toHaveLength(120);
    expect(priced.every((row) => Number(row.n) === 1)).toBe(true);
  });

  it('records PRICING_FAILED for a CREATED order whose price job failed for good, so compensation takes it with its budget', async () => {
    const { db } = web.database;
    const [id] = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 1, updatedAgoMs: 5000 });
    await failedJob(orders, 'order.price', { orderId: id }, orderJobId(id!));
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.created).toEqual({ checked: 1, enqueued: 0, live: 0, finished: 1 });
    const row = await db('orders').where({ id }).first();
    expect(row.status).toBe('PRICING_FAILED');
    expect(row.next_attempt_at).not.toBeNull();
    expect(await db('order_events').where({ order_id: id, to_status: 'PRICING_FAILED' }).first()).toMatchObject({ actor: 'scheduler:reconcile' });
  });

  it('books one dispatch run per zone for PRICED orders left waiting past the timeout', async () => {
    const { db } = web.database;
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 5, updatedAgoMs: 5000 });
    await seedOrders(db, {
      clientId: web.clientId,
      status: 'PRICED',
      count: 2,
      updatedAgoMs: 5000,
      merchant: { id: '2001', zoneId: 'other-zone', lat: 31.2, lng: 121.4 },
    });
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 2, merchant: { id: '2001', zoneId: 'fresh-zone', lat: 31.2, lng: 121.4 } });
    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.priced).toEqual({ stuck: 7, zones: 2 });
    const runs = await dispatch.getJobs(['waiting']);
    expect(await orders.getJobCountByTypes('waiting', 'delayed')).toBe(0);
    expect(runs.map((job) => `${job.name} ${job.data.zoneId}`).sort()).toEqual(['dispatch.zone other-zone', 'dispatch.zone test-zone']);
  });

  it('puts back PENDING notifications whose job is gone or failed, leaves live ones and spent ones, and never touches SENT', async () => {
    const ids = await seedOrders(web.database.db, { clientId: web.clientId, status: 'DISPATCHED', count: 6 });
    const [lost, failed, live, spent, sent, fresh] = ids as [string, string, string, string, string, string];
    await ledgerRow(lost, 'customer.dispatched');
    await ledgerRow(failed, 'customer.dispatched', { attempts: 1 });
    await failedJob(notifications, 'notify.send', { orderId: failed, kind: 'customer.dispatched' }, notificationJobId(failed, 'customer.dispatched'));
    await ledgerRow(live, 'merchant.dispatched');
    await notifications.add('notify.send', { orderId: live, kind: 'merchant.dispatched' }, { jobId: notificationJobId(live, 'merchant.dispatched'), delay: 60_000 });
    await ledgerRow(spent, 'customer.dispatched', { attempts: 3 });
    await ledgerRow(sent, 'customer.dispatched', { status: 'SENT', attempts: 1 });
    await ledgerRow(fresh, 'customer.dispatched', { agoMs: 0 });

    const dry = await maintenance.reconcile({ reason: 'cli' }, { dryRun: true });
    expect(dry.notifications).toEqual({ checked: 4, enqueued: 2, live: 1, givenUp: 1 });
    expect(await notifications.getJobCounts('waiting', 'delayed', 'failed')).toEqual({ waiting: 0, delayed: 1, failed: 1 });

    const outcome = await maintenance.reconcile({ reason: 'cron' });
    expect(outcome.notifications).toEqual({ checked: 4, enqueued: 2, live: 1, givenUp: 1 });
    expect(await notifications.getJobState(notificationJobId(lost, 'customer.dispatched'))).toBe('waiting');
    expect(await notifications.getJobState(notificationJobId(failed, 'customer.dispatched'))).toBe('waiting');
    expect(await notifications.getJobState(notificationJobId(live, 'merchant.dispatched'))).toBe('delayed');
    for (const untouched of [spent, sent, fresh]) {
      expect(await notifications.getJobState(notificationJobId(untouched, 'customer.dispatched'))).toBe('unknown');
    }
  });

  it('a dry run reports what it would do and changes nothing', async () => {
    const { db } = web.database;
    await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 4, updatedAgoMs: 5000 });
    await seedOrders(db, { clientId: web.clientId, status: 'PRICED', count: 1, updatedAgoMs: 5000 });
    const before = await db('orders').select('id', 'status', 'version').orderBy('id');
    const outcome = await maintenance.reconcile({ reason: 'cli' }, { dryRun: true });
    expect(outcome).toMatchObject({ dryRun: true, created: { enqueued: 4 }, priced: { stuck: 1, zones: 1 } });
    expect(await db('orders').select('id', 'status', 'version').orderBy('id')).toEqual(before);
    expect(await orders.getJobCountByTypes('waiting', 'delayed', 'failed')).toBe(0);
    expect(await dispatch.getJobCountByTypes('waiting', 'delayed', 'failed')).toBe(0);
  });
});
