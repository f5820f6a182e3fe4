import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Piscina } from 'piscina';
import { priceOrderJob } from '../jobs/price-order.ts';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import { transitionOrder } from '../shared/orders/transition-order.ts';
import { ZoneLoad } from '../shared/orders/zone-load.ts';
import { parsePayload } from '../shared/queues/payload-schemas.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createWorkerRedis } from '../shared/redis.ts';

export interface OrderPipeline {
  readonly worker: Worker;
  /** Stops taking jobs, waits for the ones in flight, then closes the thread pool and every connection. */
  close(): Promise<void>;
}

const PRICE_TASK = new URL('./tasks/price-task.ts', import.meta.url).href;
const PRICING_RETRY_DELAY_MS = 30_000;

/**
 * The critical order pipeline of one worker process: a BullMQ worker on the orders queue whose
 * CPU-bound steps run in piscina threads, so its event loop (and with it the job locks) never
 * stalls.
 */
export async function startOrderPipeline(config: Config, logger: Logger): Promise<OrderPipeline> {
  const db = createDb(config, { logger });
  const pool = new Piscina({
    filename: PRICE_TASK,
    minThreads: 1,
    maxThreads: config.cpuThreads,
    // The threads load TypeScript task files the way the process does.
    execArgv: ['--import', 'tsx'],
  });
  const price = (input: PricingInput) => pool.run(input) as Promise<PricingResult>;
  const zoneLoad = new ZoneLoad(db);
  const connection = createWorkerRedis(config);

  const processor = async (job: Job) => {
    const jobLogger = logger.child({ job: job.id, name: job.name });
    if (job.name === 'order.price') {
      return priceOrderJob(parsePayload('order.price', job.data), { db, price, zoneLoad, logger: jobLogger });
    }
    throw new UnrecoverableError(`unknown job name "${job.name}" on the orders queue`);
  };

  const worker = new Worker(QUEUE_NAMES.orders, processor, {
    connection,
    prefix: config.queuePrefix,
    concurrency: config.orderWorkerConcurrency,
  });
  worker.on('error', (error) => logger.warn({ err: coerceError(error) }, 'orders worker error'));
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    logger.warn({ job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error }, 'order job failed');
    if (final && job.name === 'order.price' && error.name !== 'UnrecoverableError') {
      // Out of retries: record it on the order; compensation re-drives it later.
      const orderId = (job.data as { orderId?: unknown }).orderId;
      if (typeof orderId !== 'string') return;
      transitionOrder(db, {
        orderId,
        to: 'PRICING_FAILED',
        from: ['CREATED'],
        actor: 'worker:price',
        reason: error.message,
        patch: { last_error: error.message.slice(0, 1000), next_attempt_at: new Date(Date.now() + PRICING_RETRY_DELAY_MS) },
      }).catch((e: unknown) => logger.error({ err: coerceError(e), orderId }, 'could not record PRICING_FAILED'));
    }
  });

  return {
    worker,
    async close() {
      await worker.close();
      await pool.destroy();
      connection.disconnect();
      await db.destroy();
    },
  };
}
