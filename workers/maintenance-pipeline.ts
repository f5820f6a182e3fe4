import type { Worker } from 'bullmq';
import type { WorkerServices } from '../jobs/services.ts';
import type { Config } from '../shared/config.ts';
import type { Logger } from '../shared/logger.ts';
import { createWorkerMetrics, type WorkerMetrics } from '../shared/metrics/process-metrics.ts';
import { startQueueWorker } from './queue-worker.ts';
import { createWorkerServices } from './worker-services.ts';

export interface Maintenance {
  /** The current BullMQ worker (the watchdog may replace a stuck one). */
  readonly worker: Worker;
  /** Where the maintenance jobs of this process report (warm-up items and durations). */
  readonly metrics: WorkerMetrics | undefined;
  /**
   * Stops taking jobs and aborts the one in flight (a warm-up, a compensation or reconciliation run
   * is safe to run again from the start: its attempt is retried later, here or on another worker),
   * then closes what it opened.
   */
  close(): Promise<void>;
}

/**
 * The maintenance jobs the scheduler (and a starting web process) enqueue, run by the worker
 * process one at a time: they are heavy on MySQL and Redis by design and never urgent to the
 * second, so they never compete with one another, and never with the order pipeline's concurrency.
 */
export async function startMaintenance(config: Config, logger: Logger, opts: { metrics?: WorkerMetrics; services?: WorkerServices } = {}): Promise<Maintenance> {
  const metrics = opts.services?.metrics ?? opts.metrics ?? createWorkerMetrics();
  const owned = opts.services ? undefined : createWorkerServices({ ...config, dbPoolMax: Math.min(config.dbPoolMax, 4) }, logger, { metrics });
  const services = opts.services ?? owned!.services;
  const running = startQueueWorker({ queue: 'maintenance', services, concurrency: 1, config, logger, ...(metrics ? { metrics } : {}) });
  return {
    get worker() {
      return running.worker;
    },
    metrics,
    async close() {
      // A warm-up of a big table may take longer than the shutdown bound: it stops at its next page.
      running.worker.cancelAllJobs('worker shutting down');
      await running.close();
      await owned?.close();
    },
  };
}
