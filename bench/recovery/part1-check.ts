/** Part 1's exact check (every seeded order in its next state, its job waiting) and a maintenance job's view. */
import { performance } from 'node:perf_hooks';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../shared/db.ts';
import { notificationJobId, priceJobId } from '../../shared/queues/payloads.ts';
import { liveJobIds } from './helpers.ts';
import { type Seeded, expectedStatus } from './seed.ts';

// Part 1: the re-drive of ORDERS orders by a real worker process

export interface Part1Check {
  readonly ok: boolean;
  readonly statusWrong: number;
  readonly createdWithoutJob: number;
  readonly zonesWithoutDispatch: number;
  readonly cancelledWithoutNotification: number;
  readonly cancelledWithoutLedgerRow: number;
  readonly strayPriceJobs: number;
  readonly checkMs: number;
}

/** The exact check: every seeded order in its next state, with its job waiting. */
export async function checkPart1(db: Db, redis: Redis, queues: { orders: Queue; dispatch: Queue; notifications: Queue }, seeded: Seeded): Promise<Part1Check> {
  const t0 = performance.now();
  const rows = (await db('orders').select('id', 'status', 'attempts', 'zone_id')) as { id: string; status: string; attempts: number; zone_id: string }[];
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  const [ordersWait, dispatchWait, notificationsWait] = await Promise.all([
    liveJobIds(redis, queues.orders),
    liveJobIds(redis, queues.dispatch),
    liveJobIds(redis, queues.notifications),
  ]);
  const pendingLedger = new Set(
    ((await db('notifications').select('order_id').where({ kind: 'customer.cancelled', status: 'PENDING' })) as { order_id: string }[]).map((r) =>
      String(r.order_id),
    ),
  );
  const dispatchZones = new Set<string>();
  for (const jobId of dispatchWait) {
    const match = /^dispatch-(.+)-\d+$/.exec(jobId);
    if (match) dispatchZones.add(match[1]!);
  }
  let statusWrong = 0;
  let createdWithoutJob = 0;
  let cancelledWithoutNotification = 0;
  let cancelledWithoutLedgerRow = 0;
  let priceJobsMatched = 0;
  const pricedZones = new Set<string>();
  for (const order of seeded.orders) {
    const row = byId.get(order.id);
    const want = expectedStatus(order.kind);
    if (!row || row.status !== want) {
      statusWrong += 1;
      continue;
    }
    if (want === 'CREATED') {
      if (ordersWait.has(priceJobId(order.id, Number(row.attempts)))) priceJobsMatched += 1;
      else createdWithoutJob += 1;
    } else if (want === 'PRICED') {
      pricedZones.add(String(row.zone_id));
    } else {
      if (!notificationsWait.has(notificationJobId(order.id, 'customer.cancelled'))) cancelledWithoutNotification += 1;
      if (!pendingLedger.has(order.id)) cancelledWithoutLedgerRow += 1;
    }
  }
  const zonesWithoutDispatch = [...pricedZones].filter((zone) => !dispatchZones.has(zone)).length;
  const priceJobs = [...ordersWait].filter((jobId) => jobId.startsWith('order-')).length;
  const strayPriceJobs = priceJobs - priceJobsMatched;
  return {
    ok: statusWrong === 0 && createdWithoutJob === 0 && zonesWithoutDispatch === 0 && cancelledWithoutNotification === 0 && cancelledWithoutLedgerRow === 0,
    statusWrong,
    createdWithoutJob,
    zonesWithoutDispatch,
    cancelledWithoutNotification,
    cancelledWithoutLedgerRow,
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
