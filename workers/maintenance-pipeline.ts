import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { warmUpCacheJob } from '../jobs/warm-up-cache.ts';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { createMetrics, type Metrics } from '../shared/metrics.ts';
import { parsePayload } from '../shared/queues/payload-schemas.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { createOrderMaintenance } from './order-maintenance.ts';
import { startSupervisedWorker } from './supervised-worker.ts';

export interface Maintenance {
  /** The current BullMQ worker (the watchdog may replace a stuck one). */
  readonly worker: Worker;
  /** Where the maintenance jobs of this process report (warm-up items and durations). */
  readonly metrics: Metrics;
  /**
   * Stops taking jobs and aborts the one in flight (a warm-up, a compensation or reconciliation run
   * is safe to run again from the start: its attempt is retried later, here or on another worker),
   * then closes every connection.
   */
  close(): Promise<void>;
}

/**
 * The maintenance jobs the scheduler (and a starting web process) enqueue, run by the worker
 * process one at a time: they are heavy on MySQL and Redis by design and never urgent to the
 * second, so they never compete with one another, and never with the order pipeline's concurrency.
 */
export async function startMaintenance(config: Config, logger: Logger, opts: { metrics?: Metrics } = {}): Promise<Maintenance> {
  const metrics = opts.metrics ?? createMetrics({ processName: 'worker' });
  const db = createDb({ ...config, dbPoolMax: Math.min(config.dbPoolMax, 4) }, { logger });
  const redis = createProducerRedis(config);
  redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'maintenance redis error'));
  const orderMaintenance = createOrderMaintenance(config, { db, redis, logger, metrics });

  const processor = async (job: Job, _token?: string, signal?: AbortSignal) => {
    const jobLogger = logger.child({ job: job.id, name: job.name });
    switch (job.name) {
      case 'cache.warm-up':
        return warmUpCacheJob(parsePayload('cache.warm-up', job.data), {
          db,
          redis,
          config,
          logger: jobLogger,
          metrics,
          ...(signal ? { signal } : {}),
        });
      case 'orders.compensate':
        return orderMaintenance.compensate(parsePayload('orders.compensate', job.data), { logger: jobLogger, ...(signal ? { signal } : {}) });
      case 'orders.reconcile':
        return orderMaintenance.reconcile(parsePayload('orders.reconcile', job.data), { logger: jobLogger, ...(signal ? { signal } : {}) });
      default:
        throw new UnrecoverableError(`unknown job name "${job.name}" on the maintenance queue`);
    }
  };

  const supervised = startSupervisedWorker({
    queue: QUEUE_NAMES.maintenance,
    processor,
    concurrency: 1,
    config,
    logger,
    onFailed: (job, error, final) => {
      logger.warn({ job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error }, 'maintenance job failed');
    },
  });

  return {
    get worker() {
      return supervised.worker;
    },
    metrics,
    async close() {
      // A warm-up of a big table may take longer than the shutdown bound: it stops at its next page.
      supervised.worker.cancelAllJobs('worker shutting down');
      await supervised.close();
      await orderMaintenance.close();
      redis.disconnect();
      await db.destroy();
    },
  };
}
