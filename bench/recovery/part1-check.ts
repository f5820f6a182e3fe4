/** Part 1's exact check (every seeded order in its next state, the batch its rows name waiting and carrying it) and a maintenance job's view. */
import { performance } from 'node:perf_hooks';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobProducer } from '../../jobs/producer.ts';
import type { JobPayloads } from '../../jobs/payloads.ts';
import type { Db } from '../../shared/db.ts';
import { jobPayloads, liveBatches, liveJobIds, type BenchQueues } from './helpers.ts';
import { type Seeded, expectedStatus } from './seed.ts';

export interface Part1Check {
  readonly ok: boolean;
  readonly statusWrong: number;
  /** CREATED orders whose row names no price batch. */
  readonly createdWithoutBatch: number;
  /** CREATED orders whose named batch is not live on the orders queue. */
  readonly createdBatchNotLive: number;
  /** CREATED orders whose named batch is live but does not carry them. */
  readonly createdNotCarried: number;
  /** Price batches the CREATED orders name. */
  readonly priceBatches: number;
  readonly zonesWithoutDispatch: number;
  readonly cancelledWithoutLedgerRow: number;
  /** Escalated orders whose PENDING ledger row names no batch, or one not live on the notifications queue, or one that does not carry it. */
  readonly cancelledBatchNotLive: number;
  readonly cancelledNotCarried: number;
  /** Notification batches those ledger rows name. */
  readonly notificationBatches: number;
  /** Live price jobs that no CREATED order names (a batch put on twice, under another id). */
  readonly strayPriceJobs: number;
  readonly checkMs: number;
}

/**
 * The exact check: every seeded order in its next state; a CREATED one names a price batch
 * (orders.price_job_id) that is live and carries it, an escalated one has a PENDING
 * customer.cancelled ledger row whose batch (notifications.job_id) is live and carries it, each
 * zone with a PRICED order has a dispatch run waiting. One lookup per batch, not per order.
 */
export async function checkPart1(db: Db, redis: Redis, producer: Pick<JobProducer, 'lookUp'>, queues: BenchQueues, seeded: Seeded): Promise<Part1Check> {
  const t0 = performance.now();
  const rows = (await db('orders').select('id', 'status', 'zone_id', 'price_job_id')) as { id: string; status: string; zone_id: string; price_job_id: string | null }[];
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  const ledger = new Map(
    ((await db('notifications').select('order_id', 'job_id').where({ kind: 'customer.cancelled', status: 'PENDING' })) as { order_id: string; job_id: string | null }[]).map(
      (r) => [String(r.order_id), r.job_id],
    ),
  );

  const priceIds = new Set<string>();
  const notifyIds = new Set<string>();
  for (const order of seeded.orders) {
    const row = byId.get(order.id);
    const want = expectedStatus(order.kind);
    if (row?.status !== want) continue;
    if (want === 'CREATED' && row.price_job_id !== null) priceIds.add(row.price_job_id);
    if (want === 'CANCELLED' && ledger.get(order.id)) notifyIds.add(ledger.get(order.id)!);
  }
  const [livePrice, liveNotify, ordersLive, dispatchLive] = await Promise.all([
    liveBatches(producer, 'orders', priceIds),
    liveBatches(producer, 'notifications', notifyIds),
    liveJobIds(redis, queues.orders),
    liveJobIds(redis, queues.dispatch),
  ]);
  const [pricePayloads, notifyPayloads] = await Promise.all([jobPayloads(redis, queues.orders, [...livePrice]), jobPayloads(redis, queues.notifications, [...liveNotify])]);
  const carriedOrders = new Map<string, Set<string>>();
  for (const [id, data] of pricePayloads) carriedOrders.set(id, new Set((data as JobPayloads['orders.price'] | null)?.orderIds ?? []));
  const carriedCancels = new Map<string, Set<string>>();
  for (const [id, data] of notifyPayloads) {
    const notifications = (data as JobPayloads['notify.batch'] | null)?.notifications ?? [];
    carriedCancels.set(id, new Set(notifications.filter((n) => n.kind === 'customer.cancelled').map((n) => n.orderId)));
  }
  const dispatchZones = new Set<string>();
  for (const jobId of dispatchLive) {
    const match = /^dispatch-(.+)-\d+$/.exec(jobId);
    if (match) dispatchZones.add(match[1]!);
  }

  let statusWrong = 0;
  let createdWithoutBatch = 0;
  let createdBatchNotLive = 0;
  let createdNotCarried = 0;
  let cancelledWithoutLedgerRow = 0;
  let cancelledBatchNotLive = 0;
  let cancelledNotCarried = 0;
  const pricedZones = new Set<string>();
  for (const order of seeded.orders) {
    const row = byId.get(order.id);
    const want = expectedStatus(order.kind);
    if (!row || row.status !== want) {
      statusWrong += 1;
    } else if (want === 'CREATED') {
      const batch = row.price_job_id;
      if (batch === null) createdWithoutBatch += 1;
      else if (!livePrice.has(batch)) createdBatchNotLive += 1;
      else if (!carriedOrders.get(batch)?.has(order.id)) createdNotCarried += 1;
    } else if (want === 'PRICED') {
      pricedZones.add(String(row.zone_id));
    } else if (!ledger.has(order.id)) {
      cancelledWithoutLedgerRow += 1;
    } else {
      const batch = ledger.get(order.id)!;
      if (batch === null || !liveNotify.has(batch)) cancelledBatchNotLive += 1;
      else if (!carriedCancels.get(batch)?.has(order.id)) cancelledNotCarried += 1;
    }
  }
  const zonesWithoutDispatch = [...pricedZones].filter((zone) => !dispatchZones.has(zone)).length;
  const strayPriceJobs = [...ordersLive].filter((jobId) => jobId.startsWith('price-') && !priceIds.has(jobId)).length;
  const problems = [statusWrong, createdWithoutBatch, createdBatchNotLive, createdNotCarried, zonesWithoutDispatch, cancelledWithoutLedgerRow, cancelledBatchNotLive, cancelledNotCarried];
  return {
    ok: problems.every((n) => n === 0),
    statusWrong,
    createdWithoutBatch,
    createdBatchNotLive,
    createdNotCarried,
    priceBatches: priceIds.size,
    zonesWithoutDispatch,
    cancelledWithoutLedgerRow,
    cancelledBatchNotLive,
    cancelledNotCarried,
    notificationBatches: notifyIds.size,
    strayPriceJobs,
    checkMs: performance.now() - t0,
  };
}

export interface MaintenanceJobView {
  readonly id: string;
  readonly state: string;
  readonly attemptsMade: number | null;
  readonly queuedMs: number | null;
  readonly runMs: number | null;
  readonly finishedAfterEnqueueMs: number | null;
  readonly returnvalue: unknown;
  readonly failedReason: string | null;
}

export async function viewJob(queue: Queue, id: string, enqueuedAt: number): Promise<MaintenanceJobView> {
  const job = await Job.fromId(queue, id);
  if (!job) return { id, state: 'missing', attemptsMade: null, queuedMs: null, runMs: null, finishedAfterEnqueueMs: null, returnvalue: null, failedReason: null };
  const state = await job.getState();
  return {
    id,
    state,
    attemptsMade: job.attemptsMade,
    queuedMs: job.processedOn ? job.processedOn - enqueuedAt : null,
    runMs: job.processedOn && job.finishedOn ? job.finishedOn - job.processedOn : null,
    finishedAfterEnqueueMs: job.finishedOn ? job.finishedOn - enqueuedAt : null,
    returnvalue: job.returnvalue ?? null,
    failedReason: job.failedReason ?? null,
  };
}
