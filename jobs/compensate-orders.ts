import type { Db } from '../shared/db.ts';
import { compareIds } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { MaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import type { LockedOrder, PlannedChange } from '../shared/orders/apply-changes.ts';
import { orderTrail, requestIdOf } from '../shared/orders/request-ids.ts';
import { budgetSpent, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { FAILED_STATUSES, RETRY_STATE, type FailedStatus } from '../shared/orders/state-machine.ts';
import { writeOrders, type OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { priceBatchJobId } from '../shared/queues/job-ids.ts';
import type { JobPayloads } from './payloads.ts';

export interface RedriveDeps {
  readonly db: Db;
  /** The write routine's parts: a batch goes through lock, mark stale, update, reload. */
  readonly writer: OrderWriterDeps;
  readonly policy: RetryPolicy;
  /** Puts re-driven CREATED orders on the orders queue, one price batch per attempt. */
  readonly enqueuePriceBatches: (batches: readonly JobPayloads['orders.price'][]) => Promise<void>;
  /** Books a dispatch run now for each zone whose orders went back to PRICED. */
  readonly dispatchNow: (zoneIds: readonly string[]) => Promise<void>;
}

export interface RedriveSelection {
  readonly status: FailedStatus;
  /** Orders taken at most in this batch. */
  readonly limit: number;
  /** Only these orders (an operator's choice), due or not; default: the orders whose next attempt is due. */
  readonly orderIds?: readonly string[];
  /** Re-drive even past the attempt budget (an operator's decision); default: escalate there. */
  readonly ignoreBudget?: boolean;
  /** Recorded in order_events: 'scheduler:compensate:cron', 'operator'... */
  readonly actor: string;
  /** The job doing it, recorded in order_events. */
  readonly jobId?: string;
}

export interface RedrivenOrder {
  readonly id: string;
  readonly zoneId: string;
  readonly to: (typeof RETRY_STATE)[FailedStatus];
  /** Re-drives so far, this one included. */
  readonly attempts: number;
}

export interface RedriveBatch {
  /** Orders the selection matched. */
  readonly found: number;
  readonly redriven: readonly RedrivenOrder[];
  /** Moved to CANCELLED: their budget was spent (the customer's notification went out with them). */
  readonly escalated: readonly string[];
  /** Matched, but another writer held them, or they moved on meanwhile: left for the next run. */
  readonly skipped: number;
  /** The request ids of the orders the selection matched (read with them), for the log lines that name them. */
  readonly requestIds: ReadonlyMap<string, string | null>;
  /** Whether their new versions went into the cache (when Redis failed after the commit, the stale marks keep readers on MySQL). */
  readonly cacheReloaded: boolean;
  /** Whether the re-driven orders' jobs were enqueued (if not, their rows are the outbox: the reconciler does it). */
  readonly enqueued: boolean;
  readonly enqueueError?: Error;
}

/**
 * One batch of re-drives, through the write routine: the orders of the selection are locked
 * (Redis, without waiting: one a writer is busy with, or another compensator took, is left for
 * the next run) and row-locked; those still in the failed state (and due, unless an operator chose
 * them) go back to their retry state (PRICING_FAILED -> CREATED with a price batch, DISPATCH_FAILED
 * -> PRICED with their zone's dispatch run; attempts + 1) or, past their state's budget, to
 * CANCELLED (the customer's notification is owed with it), an order_events row each. Then the
 * re-driven orders are enqueued; should that fail, the rows are the outbox and the reconciler
 * enqueues them. Compensation and the operator's CLI both go through here.
 */
export async function redriveBatch(deps: RedriveDeps, selection: RedriveSelection): Promise<RedriveBatch> {
  const { status } = selection;
  const to = RETRY_STATE[status];
  let query = deps.db('orders').select('id', 'request_id').where({ status });
  query = selection.orderIds ? query.whereIn('id', selection.orderIds) : query.where('next_attempt_at', '<=', deps.db.raw('CURRENT_TIMESTAMP(3)')).orderBy('next_attempt_at');
  const foundRows = (await query.limit(selection.limit)) as { id: string | number; request_id: unknown }[];
  const found = foundRows.map((row) => String(row.id));
  const requestIds = new Map(foundRows.map((row) => [String(row.id), requestIdOf(row)]));
  if (found.length === 0) return { found: 0, redriven: [], escalated: [], skipped: 0, requestIds, cacheReloaded: true, enqueued: true };

  const now = new Date();
  const outcome = await writeOrders(deps.writer, {
    orderIds: found,
    actor: selection.actor,
    ...(selection.jobId ? { jobId: selection.jobId } : {}),
    waitMs: 0,
    plan: (locked) => planRedrive(deps.policy, selection, [...locked.values()], now),
  });
  const redriven = outcome.applied
    .filter((change) => change.to === to)
    .map((change) => ({ id: change.orderId, zoneId: change.zoneId, to, attempts: change.patch.attempts ?? 0 }));
  const escalated = outcome.applied.filter((change) => change.to === 'CANCELLED').map((change) => change.orderId);
  const batch = { found: found.length, redriven, escalated, skipped: found.length - outcome.applied.length, requestIds, cacheReloaded: outcome.cacheReloaded };
  try {
    await Promise.all([
      deps.enqueuePriceBatches(priceBatches(redriven.filter((order) => order.to === 'CREATED'))),
      deps.dispatchNow([...new Set(redriven.filter((order) => order.to === 'PRICED').map((order) => order.zoneId))]),
    ]);
    return { ...batch, enqueued: true };
  } catch (error) {
    return { ...batch, enqueued: false, enqueueError: error instanceof Error ? error : new Error(String(error)) };
  }
}

/** Under the rows' locks: who is re-driven, who escalated. */
function planRedrive(policy: RetryPolicy, selection: RedriveSelection, locked: readonly LockedOrder[], now: Date): PlannedChange[] {
  const { status } = selection;
  const to = RETRY_STATE[status];
  const eligible = locked.filter(
    (order) => order.status === status && (selection.orderIds !== undefined || (order.nextAttemptAt !== null && order.nextAttemptAt <= now)),
  );
  const escalate = eligible.filter((order) => !selection.ignoreBudget && budgetSpent(policy, status, order.attempts));
  const redrive = eligible.filter((order) => !escalate.includes(order));
  // Re-driven to CREATED: one price batch per attempt, whose id every row of it carries.
  const jobIds = new Map<string, string>();
  if (to === 'CREATED') {
    for (const batch of priceBatches(redrive.map((order) => ({ id: order.id, attempts: order.attempts + 1 })))) {
      const jobId = priceBatchJobId(batch.orderIds, batch.attempt);
      for (const id of batch.orderIds) jobIds.set(id, jobId);
    }
  }
  return [
    ...redrive.map((order) => ({
      orderId: order.id,
      to,
      reason: `re-drive ${order.attempts + 1}${selection.ignoreBudget ? ' (operator, past any budget)' : ` of ${policy.budget[status]}`}`,
      patch: { attempts: order.attempts + 1, next_attempt_at: null, ...(jobIds.has(order.id) ? { price_job_id: jobIds.get(order.id)! } : {}) },
    })),
    // last_error keeps the cause; the event says why the order was given up.
    ...escalate.map((order) => ({
      orderId: order.id,
      to: 'CANCELLED' as const,
      reason: `escalated: ${order.attempts} re-drives of ${status} spent; last error: ${order.lastError ?? 'none'}`,
      patch: { next_attempt_at: null },
    })),
  ];
}

/** Orders going back to CREATED, grouped by attempt (in id order): a price batch each. */
function priceBatches(orders: readonly { readonly id: string; readonly attempts: number }[]): JobPayloads['orders.price'][] {
  const byAttempt = new Map<number, string[]>();
  for (const order of [...orders].sort((a, b) => compareIds(a.id, b.id))) {
    byAttempt.set(order.attempts, [...(byAttempt.get(order.attempts) ?? []), order.id]);
  }
  return [...byAttempt].map(([attempt, orderIds]) => ({ orderIds, attempt }));
}

export type StatusCounts = Record<'found' | 'redriven' | 'escalated' | 'skipped', number>;

export interface CompensationOutcome {
  readonly byStatus: Readonly<Record<FailedStatus, StatusCounts>>;
  readonly redriven: number;
  readonly escalated: number;
  readonly ms: number;
}

export interface CompensateDeps extends RedriveDeps {
  readonly batchSize: number;
  readonly logger: Logger;
  readonly metrics?: Pick<MaintenanceMetrics, 'compensationOrders' | 'maintenanceSeconds'>;
  /** Stops the run between two batches. */
  readonly signal?: AbortSignal;
  /** Told after every batch. */
  readonly onBatch?: (status: FailedStatus, batch: RedriveBatch) => void;
  readonly jobId?: string;
}

/**
 * Compensation: every order in PRICING_FAILED or DISPATCH_FAILED whose next attempt is due is
 * re-driven or, past its state's attempt budget, escalated. Batch after batch until none is due; a
 * batch that moved nothing (every due order busy elsewhere) ends the run too, the next tick comes
 * back for them.
 */
export async function compensateOrdersJob(payload: JobPayloads['orders.compensate'], deps: CompensateDeps): Promise<CompensationOutcome> {
  const started = performance.now();
  const byStatus = {} as Record<FailedStatus, StatusCounts>;
  for (const status of FAILED_STATUSES) {
    const counts: StatusCounts = { found: 0, redriven: 0, escalated: 0, skipped: 0 };
    byStatus[status] = counts;
    for (;;) {
      deps.signal?.throwIfAborted();
      const batch = await redriveBatch(deps, {
        status,
        limit: deps.batchSize,
        actor: `scheduler:compensate:${payload.reason}`,
        ...(deps.jobId ? { jobId: deps.jobId } : {}),
      });
      if (!batch.cacheReloaded) deps.logger.warn({ status }, 'compensation batch committed but not reloaded into the cache (Redis failed): reads of those orders go to MySQL');
      if (!batch.enqueued) deps.logger.warn({ status, err: batch.enqueueError }, 'compensation batch committed but not enqueued; the reconciler enqueues it');
      counts.found += batch.found;
      counts.redriven += batch.redriven.length;
      counts.escalated += batch.escalated.length;
      counts.skipped += batch.skipped;
      const values = { found: batch.found, redriven: batch.redriven.length, escalated: batch.escalated.length, skipped: batch.skipped };
      for (const [outcome, value] of Object.entries(values)) if (value > 0) deps.metrics?.compensationOrders.inc({ status, outcome }, value);
      if (batch.redriven.length + batch.escalated.length > 0) {
        // One line per batch that moved orders, naming them: re-driven ones show up again on their price or dispatch batch's line.
        deps.logger.info(
          {
            status,
            ...values,
            redrivenTrail: orderTrail(batch.redriven.map((order) => order.id), batch.requestIds),
            escalatedTrail: orderTrail(batch.escalated, batch.requestIds),
          },
          `compensation batch (${status}): ${values.redriven} re-driven, ${values.escalated} escalated to CANCELLED, ${values.skipped} skipped`,
        );
      }
      deps.onBatch?.(status, batch);
      if (batch.found < deps.batchSize || batch.redriven.length + batch.escalated.length === 0) break;
    }
  }
  const ms = Math.round(performance.now() - started);
  deps.metrics?.maintenanceSeconds.observe({ job: 'compensate' }, ms / 1000);
  const sum = (key: keyof StatusCounts) => FAILED_STATUSES.reduce((total, status) => total + byStatus[status][key], 0);
  const [found, redriven, escalated] = [sum('found'), sum('redriven'), sum('escalated')];
  const log = found > 0 ? deps.logger.info.bind(deps.logger) : deps.logger.debug.bind(deps.logger);
  log({ reason: payload.reason, byStatus, redriven, escalated, ms }, `compensation: ${found} due, ${redriven} re-driven, ${escalated} escalated in ${ms} ms`);
  return { byStatus, redriven, escalated, ms };
}
