import { UnrecoverableError, type Worker, type Job } from 'bullmq';
import { Piscina } from 'piscina';
import { dispatchZoneJob } from '../jobs/dispatch-zone.ts';
import { priceOrderJob } from '../jobs/price-order.ts';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { MatchInput, MatchOutput } from '../shared/orders/dispatch-matching.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import { nextAttemptAt, retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import { ZoneLoad } from '../shared/orders/zone-load.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { parsePayload } from '../shared/queues/payload-schemas.ts';
import { enqueueNotificationBatch } from '../shared/queues/notification-producer.ts';
import { dispatchJobId, type NotificationKind } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { ZoneLocks } from '../shared/cache/zone-locks.ts';
import { startSupervisedWorker } from './supervised-worker.ts';

export interface OrderPipeline {
  /** The current BullMQ worker (the watchdog may replace a stuck one). */
  readonly worker: Worker;
  /** Stops taking jobs, waits for the ones in flight, then closes the thread pool and every connection. */
  close(): Promise<void>;
}

const PRICE_TASK = new URL('./tasks/price-task.ts', import.meta.url).href;
const MATCH_TASK = new URL('./tasks/match-task.ts', import.meta.url).href;
const DISPATCHED_NOTIFICATIONS: readonly NotificationKind[] = ['customer.dispatched', 'merchant.dispatched'];

/**
 * The critical order pipeline of one worker process: a BullMQ worker on the orders queue whose
 * CPU-bound steps (pricing, matching) run in piscina threads, so its event loop, and with it the
 * job locks, never stalls. Pricing an order books its zone's next dispatch window.
 */
export async function startOrderPipeline(
  config: Config,
  logger: Logger,
  opts: { priceTask?: string } = {},
): Promise<OrderPipeline> {
  const db = createDb(config, { logger });
  const pool = new Piscina({
    filename: opts.priceTask ?? PRICE_TASK,
    minThreads: 1,
    maxThreads: config.cpuThreads,
    // The threads load TypeScript task files the way the process does.
    execArgv: ['--import', 'tsx'],
  });
  const price = (input: PricingInput) => pool.run(input) as Promise<PricingResult>;
  const match = (input: MatchInput) => pool.run(input, { filename: MATCH_TASK }) as Promise<MatchOutput>;
  const zoneLoad = new ZoneLoad(db);
  const producerRedis = createProducerRedis(config);
  producerRedis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'producer redis error'));
  const { change, deps: writer } = createOrderWriter(db, producerRedis, config);
  const retry = retryPolicyFrom(config);
  const zoneLock = new ZoneLocks(producerRedis, { prefix: config.cachePrefix, lockTimeoutMs: config.lockTtlMs });
  const ordersQueue = createQueue(QUEUE_NAMES.orders, { connection: producerRedis, prefix: config.queuePrefix });
  const notificationsQueue = createQueue(QUEUE_NAMES.notifications, { connection: producerRedis, prefix: config.queuePrefix });
  for (const queue of [ordersQueue, notificationsQueue]) {
    queue.on('error', (error) => logger.debug({ err: coerceError(error) }, 'queue error'));
  }

  /** Every priced order of a window joins one delayed dispatch job of its zone (same job id). */
  const bookDispatch = async (zoneId: string, atOnce = false) => {
    const now = Date.now();
    const windowStart = atOnce ? now : now - (now % config.dispatchWindowMs);
    const delay = atOnce ? 0 : windowStart + config.dispatchWindowMs - now;
    await ordersQueue.add('dispatch.zone', { zoneId }, { jobId: dispatchJobId(zoneId, windowStart), delay });
  };
  const notifyDispatched = async (orderIds: readonly string[]) => {
    const notifications = orderIds.flatMap((orderId) => DISPATCHED_NOTIFICATIONS.map((kind) => ({ orderId, kind })));
    await enqueueNotificationBatch(notificationsQueue, notifications, config.redisTimeoutMs);
  };

  const processor = async (job: Job) => {
    const jobLogger = logger.child({ job: job.id, name: job.name });
    switch (job.name) {
      case 'order.price': {
        const priced = await priceOrderJob(parsePayload('order.price', job.data), { db, change, price, zoneLoad, logger: jobLogger });
        if (priced.outcome === 'priced') await bookDispatch(priced.zoneId);
        return priced;
      }
      case 'dispatch.zone':
        return dispatchZoneJob(parsePayload('dispatch.zone', job.data), {
          db,
          writer,
          match,
          notifyDispatched,
          dispatchAgain: (zoneId) => bookDispatch(zoneId, true),
          dispatchLater: (zoneId) => bookDispatch(zoneId),
          zoneLock,
          batchSize: config.dispatchBatchSize,
          radiusMeters: config.dispatchRadiusMeters,
          retry,
          logger: jobLogger,
        });
      default:
        throw new UnrecoverableError(`unknown job name "${job.name}" on the orders queue`);
    }
  };

  const recording = new Set<Promise<unknown>>();
  const recordPricingFailed = (job: Job, error: Error) => {
    // Out of retries: record it on the order; compensation re-drives it later.
    const orderId = (job.data as { orderId?: unknown }).orderId;
    if (typeof orderId !== 'string') return;
    const recorded = change({
      orderId,
      to: 'PRICING_FAILED',
      from: ['CREATED'],
      actor: 'worker:price',
      reason: error.message,
      patch: (current) => ({ last_error: error.message.slice(0, 1000), next_attempt_at: nextAttemptAt(retry, current.attempts) }),
    })
      .catch((e: unknown) => logger.error({ err: coerceError(e), orderId }, 'could not record PRICING_FAILED'))
      .finally(() => recording.delete(recorded));
    recording.add(recorded);
  };

  const supervised = startSupervisedWorker({
    queue: QUEUE_NAMES.orders,
    processor,
    concurrency: config.orderWorkerConcurrency,
    config,
    logger,
    onFailed: (job, error, final) => {
      logger.warn({ job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error }, 'order job failed');
      if (final && job.name === 'order.price' && error.name !== 'UnrecoverableError') recordPricingFailed(job, error);
    },
  });

  return {
    get worker() {
      return supervised.worker;
    },
    async close() {
      await supervised.close();
      await Promise.all(recording);
      await pool.destroy();
      await Promise.all([ordersQueue.close(), notificationsQueue.close()]);
      producerRedis.disconnect();
      await db.destroy();
    },
  };
}
