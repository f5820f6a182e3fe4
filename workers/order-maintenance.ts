import { DispatchBooking } from '../jobs/book-dispatch.ts';
import { compensateOrdersJob, redriveBatch, type CompensateDeps, type CompensationOutcome, type RedriveBatch, type RedriveSelection } from '../jobs/compensate-orders.ts';
import type { JobPayloads } from '../jobs/payloads.ts';
import { JobProducer } from '../jobs/producer.ts';
import { reconcileOrdersJob, type ReconcileDeps, type ReconcileOutcome } from '../jobs/reconcile-orders.ts';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { MaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import { retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import type { OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { keepCompleted } from '../shared/queues/create-queue.ts';
import type { Redis } from '../shared/redis.ts';

type RunOptions<D> = Partial<Pick<D, Extract<keyof D, 'signal' | 'onProgress' | 'onBatch' | 'dryRun' | 'logger'>>>;

export interface OrderMaintenance {
  readonly writer: OrderWriterDeps;
  readonly producer: JobProducer;
  /** One batch of re-drives (what compensation runs batch after batch), for an operator's chosen orders. */
  redrive(selection: RedriveSelection): Promise<RedriveBatch>;
  compensate(payload: JobPayloads['orders.compensate'], opts?: RunOptions<CompensateDeps>): Promise<CompensationOutcome>;
  reconcile(payload: JobPayloads['orders.reconcile'], opts?: RunOptions<ReconcileDeps>): Promise<ReconcileOutcome>;
  /** Closes the queues it opened (not the db nor the redis connection it was given). */
  close(): Promise<void>;
}

/** The compensation and reconciliation runs of the operator's CLI, wired from one config, through the same job functions the worker runs. */
export function createOrderMaintenance(config: Config, deps: { db: Db; redis: Redis; logger: Logger; metrics?: MaintenanceMetrics }): OrderMaintenance {
  const producer = new JobProducer(deps.redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs, removeOnComplete: keepCompleted(config) });
  const writer = createOrderWriter(deps.db, deps.redis, config, {
    logger: deps.logger,
    enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
  });
  const policy = retryPolicyFrom(config);
  const booking = new DispatchBooking(producer, config.dispatchWindowMs);
  const redriveDeps = {
    db: deps.db,
    writer,
    policy,
    enqueuePriceBatches: async (batches: readonly JobPayloads['orders.price'][]) => void (await producer.addMany('orders.price', batches)),
    dispatchNow: (zoneIds: readonly string[]) => booking.now(zoneIds),
  };
  return {
    writer,
    producer,
    redrive: (selection) => redriveBatch(redriveDeps, selection),
    compensate: (payload, opts = {}) =>
      compensateOrdersJob(payload, {
        ...redriveDeps,
        batchSize: config.maintenanceBatchSize,
        logger: deps.logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        ...opts,
      }),
    reconcile: (payload, opts = {}) =>
      reconcileOrdersJob(payload, {
        db: deps.db,
        producer,
        writer,
        dispatchNow: (zoneIds) => booking.now(zoneIds),
        retry: policy,
        createdAfterMs: config.reconcileCreatedAfterMs,
        stuckAfterMs: config.reconcileStuckAfterMs,
        notifyAfterMs: config.reconcileNotifyAfterMs,
        notifyAttemptBudget: config.notifyAttemptBudget,
        batchSize: config.maintenanceBatchSize,
        logger: deps.logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        ...opts,
      }),
    async close() {
      await producer.close();
    },
  };
}
