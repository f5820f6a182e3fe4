import type { Worker } from 'bullmq';
import type { WorkerServices } from '../jobs/services.ts';
import type { Config } from '../shared/config.ts';
import type { Logger } from '../shared/logger.ts';
import { startQueueWorker } from './queue-worker.ts';
import { createWorkerServices } from './worker-services.ts';

export interface OrderPipeline {
  /** The current BullMQ worker of price batches (the watchdog may replace a stuck one). */
  readonly worker: Worker;
  /** The current BullMQ worker of dispatch runs. */
  readonly dispatchWorker: Worker;
  readonly services: WorkerServices;
  /** Stops taking jobs, waits for the ones in flight, then closes what it opened. */
  close(): Promise<void>;
}

/**
 * The critical order pipeline of one worker process: a worker on the orders queue (price batches)
 * and one on the dispatch queue (zone runs), whose CPU-bound steps run in piscina threads, so the
 * event loop, and with it the job locks, never stalls. The two queues keep a backlog of orders to
 * price from delaying the matching of those already priced, without priorities (which cost the
 * intake). Given `services`, it shares them (and leaves closing them to their owner).
 */
export async function startOrderPipeline(
  config: Config,
  logger: Logger,
  opts: { priceTask?: string; services?: WorkerServices } = {},
): Promise<OrderPipeline> {
  const owned = opts.services ? undefined : createWorkerServices(config, logger, opts.priceTask ? { priceTask: opts.priceTask } : {});
  const services = opts.services ?? owned!.services;
  const metrics = services.metrics ? { metrics: services.metrics } : {};
  const pricing = startQueueWorker({ queue: 'orders', services, concurrency: config.orderWorkerConcurrency, config, logger, ...metrics });
  // A failed run leaves its orders PRICED: the next run of the zone, or the reconciler, takes them.
  const dispatching = startQueueWorker({ queue: 'dispatch', services, concurrency: config.dispatchWorkerConcurrency, config, logger, ...metrics });
  return {
    get worker() {
      return pricing.worker;
    },
    get dispatchWorker() {
      return dispatching.worker;
    },
    services,
    async close() {
      await Promise.all([pricing.close(), dispatching.close()]);
      await owned?.close();
    },
  };
}
