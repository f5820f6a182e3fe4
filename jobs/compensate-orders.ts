import type { Queue } from 'bullmq';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { OrderChangeDeps } from '../shared/orders/change-order.ts';
import { redriveOrders, type RedriveBatch } from '../shared/orders/redrive-orders.ts';
import type { RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { FAILED_STATUSES, type FailedStatus } from '../shared/orders/state-machine.ts';
import { enqueueNotificationBatch } from '../shared/queues/notification-producer.ts';
import { enqueueDispatchRuns, enqueuePriceJobs } from '../shared/queues/order-producer.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface CompensateDeps {
  /** The order writer's parts (the batch goes through the same lock-mark-update-reload steps). */
  readonly writer: OrderChangeDeps;
  readonly policy: RetryPolicy;
  readonly ordersQueue: Queue;
  readonly dispatchQueue: Queue;
  readonly notificationsQueue: Queue;
  readonly batchSize: number;
  /** Bound on one enqueue, in ms. */
  readonly redisTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, 'compensationOrders' | 'maintenanceSeconds'>;
  /** Stops the run between two batches. */
  readonly signal?: AbortSignal;
  /** Told after every batch. */
  readonly onBatch?: (status: FailedStatus, batch: RedriveBatch) => void;
}

export type StatusCounts = Record<'found' | 'redriven' | 'escalated' | 'skipped', number>;

export interface CompensationOutcome {
  readonly byStatus: Readonly<Record<FailedStatus, StatusCounts>>;
  readonly redriven: number;
  readonly escalated: number;
  readonly ms: number;
}

/**
 * Compensation: every order in PRICING_FAILED or DISPATCH_FAILED whose next attempt is due is
 * re-driven (back to CREATED or PRICED and onto the orders queue) or, past its state's attempt
 * budget, escalated (CANCELLED, and the customer told). Batch after batch until none is due; a
 * batch that claimed nothing (every due order busy elsewhere) ends the run too, the next tick
 * comes back for them.
 */
export async function compensateOrdersJob(payload: JobPayloads['orders.compensate'], deps: CompensateDeps): Promise<CompensationOutcome> {
  const started = performance.now();
  const byStatus = {} as Record<FailedStatus, StatusCounts>;
  for (const status of FAILED_STATUSES) {
    const counts: StatusCounts = { found: 0, redriven: 0, escalated: 0, skipped: 0 };
    byStatus[status] = counts;
    for (;;) {
      deps.signal?.throwIfAborted();
      const batch = await redriveOrders(
        { ...deps.writer, policy: deps.policy },
        { status, limit: deps.batchSize, actor: `scheduler:compensate:${payload.reason}` },
      );
      if (!batch.cacheReloaded) deps.logger.warn({ status }, 'compensation batch committed but not reloaded into the cache (Redis failed): reads of those orders go to MySQL');
      await enqueueRedriven(deps, batch);
      counts.found += batch.found;
      counts.redriven += batch.redriven.length;
      counts.escalated += batch.escalated.length;
      counts.skipped += batch.skipped;
      for (const outcome of ['found', 'redriven', 'escalated', 'skipped'] as const) {
        const value = outcome === 'found' || outcome === 'skipped' ? batch[outcome] : batch[outcome].length;
        if (value > 0) deps.metrics?.compensationOrders.inc({ status, outcome }, value);
      }
      deps.onBatch?.(status, batch);
      const moved = batch.redriven.length + batch.escalated.length;
      if (batch.found < deps.batchSize || moved === 0) break;
    }
  }
  const ms = Math.round(performance.now() - started);
  deps.metrics?.maintenanceSeconds.observe({ job: 'compensate' }, ms / 1000);
  const redriven = FAILED_STATUSES.reduce((sum, status) => sum + byStatus[status].redriven, 0);
  const escalated = FAILED_STATUSES.reduce((sum, status) => sum + byStatus[status].escalated, 0);
  const found = FAILED_STATUSES.reduce((sum, status) => sum + byStatus[status].found, 0);
  const log = found > 0 ? deps.logger.info.bind(deps.logger) : deps.logger.debug.bind(deps.logger);
  log({ reason: payload.reason, byStatus, redriven, escalated, ms }, `compensation: ${found} due, ${redriven} re-driven, ${escalated} escalated in ${ms} ms`);
  return { byStatus, redriven, escalated, ms };
}

/**
 * Puts what a batch moved on the queues: price jobs for CREATED, a dispatch run per zone for PRICED,
 * the cancel notification for escalated orders. If Redis fails here the rows say what is owed and
 * the reconciler enqueues it.
 */
export async function enqueueRedriven(
  deps: Pick<CompensateDeps, 'ordersQueue' | 'dispatchQueue' | 'notificationsQueue' | 'redisTimeoutMs'>,
  batch: RedriveBatch,
): Promise<void> {
  const toPrice = batch.redriven.filter((order) => order.to === 'CREATED').map((order) => ({ orderId: order.id, attempts: order.attempts }));
  const zones = batch.redriven.filter((order) => order.to === 'PRICED').map((order) => order.zoneId);
  await Promise.all([
    enqueuePriceJobs(deps.ordersQueue, toPrice, deps.redisTimeoutMs),
    enqueueDispatchRuns(deps.dispatchQueue, zones, deps.redisTimeoutMs),
    enqueueNotificationBatch(
      deps.notificationsQueue,
      batch.escalated.map((orderId) => ({ orderId, kind: 'customer.cancelled' as const })),
      deps.redisTimeoutMs,
    ),
  ]);
}
