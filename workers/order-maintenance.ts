import type { Queue } from 'bullmq';
import { compensateOrdersJob, type CompensateDeps, type CompensationOutcome } from '../jobs/compensate-orders.ts';
import { reconcileOrdersJob, type ReconcileDeps, type ReconcileOutcome } from '../jobs/reconcile-orders.ts';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import { createOrderWriter, type OrderWriter } from '../shared/orders/order-writer.ts';
import { retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import type { Redis } from '../shared/redis.ts';

type RunOptions<D> = Partial<Pick<D, Extract<keyof D, 'signal' | 'onProgress' | 'onBatch' | 'dryRun' | 'logger'>>>;

export interface OrderMaintenance {
  readonly writer: OrderWriter;
  readonly ordersQueue: Queue;
  readonly dispatchQueue: Queue;
  readonly notificationsQueue: Queue;
  compensate(payload: JobPayloads['orders.compensate'], opts?: RunOptions<CompensateDeps>): Promise<CompensationOutcome>;
  reconcile(payload: JobPayloads['orders.reconcile'], opts?: RunOptions<ReconcileDeps>): Promise<ReconcileOutcome>;
  /** Closes the queues it opened (not the db nor the redis connection it was given). */
  close(): Promise<void>;
}

/** The compensation and reconciliation runs of one process (a worker, or the operator's CLI), wired from one config. */
export function createOrderMaintenance(
  config: Config,
  deps: { db: Db; redis: Redis; logger: Logger; metrics?: Metrics },
): OrderMaintenance {
  const writer = createOrderWriter(deps.db, deps.redis, config);
  const ordersQueue = createQueue(QUEUE_NAMES.orders, { connection: deps.redis, prefix: config.queuePrefix });
  const dispatchQueue = createQueue(QUEUE_NAMES.dispatch, { connection: deps.redis, prefix: config.queuePrefix });
  const notificationsQueue = createQueue(QUEUE_NAMES.notifications, { connection: deps.redis, prefix: config.queuePrefix });
  for (const queue of [ordersQueue, dispatchQueue, notificationsQueue]) {
    queue.on('error', (error) => deps.logger.debug({ err: coerceError(error) }, 'queue error'));
  }
  const policy = retryPolicyFrom(config);
  return {
    writer,
    ordersQueue,
    dispatchQueue,
    notificationsQueue,
    compensate: (payload, opts = {}) =>
      compensateOrdersJob(payload, {
        writer: writer.deps,
        policy,
        ordersQueue,
        dispatchQueue,
        notificationsQueue,
        batchSize: config.maintenanceBatchSize,
        redisTimeoutMs: config.redisTimeoutMs,
        logger: deps.logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        ...opts,
      }),
    reconcile: (payload, opts = {}) =>
      reconcileOrdersJob(payload, {
        db: deps.db,
        redis: deps.redis,
        ordersQueue,
        dispatchQueue,
        notificationsQueue,
        change: writer.change,
        retry: policy,
        createdAfterMs: config.reconcileCreatedAfterMs,
        stuckAfterMs: config.reconcileStuckAfterMs,
        notifyAfterMs: config.reconcileNotifyAfterMs,
        notifyAttemptBudget: config.notifyAttemptBudget,
        batchSize: config.maintenanceBatchSize,
        redisTimeoutMs: config.redisTimeoutMs,
        logger: deps.logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        ...opts,
      }),
    async close() {
      await Promise.all([ordersQueue.close(), dispatchQueue.close(), notificationsQueue.close()]);
    },
  };
}
