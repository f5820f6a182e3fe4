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
import { priceOrders, type PriceOutcome } from '../shared/orders/price-batch.ts';
import { MicroBatcher, batchesInFlight, type ItemOutcome } from '../shared/micro-batcher.ts';
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
  /** The current BullMQ worker of price jobs (the watchdog may replace a stuck one). */
  readonly worker: Worker;
  /** The current BullMQ worker of dispatch runs. */
  readonly dispatchWorker: Worker;
  /** Stops taking jobs, waits for the ones in flight, then closes the thread pools and every connection. */
  close(): Promise<void>;
}

const PRICE_TASK = new URL('./tasks/price-task.ts', import.meta.url).href;
const MATCH_TASK = new URL('./tasks/match-task.ts', import.meta.url).href;
const DISPATCHED_NOTIFICATIONS: readonly NotificationKind[] = ['customer.dispatched', 'merchant.dispatched'];

/**
 * The critical order pipeline of one worker process: a BullMQ worker on the orders queue (price
 * jobs) and one on the dispatch queue (zone runs), whose CPU-bound steps (pricing, matching) run
 * in piscina threads, so the event loop, and with it the job locks, never stalls. Pricing an
 * order books its zone's next dispatch window. The two queues keep a backlog of orders to price
 * from delaying the matching of those already priced, without priorities (which cost the intake).
 */
export async function startOrderPipeline(
  config: Config,
  logger: Logger,
  opts: { priceTask?: string } = {},
): Promise<OrderPipeline> {
  const db = createDb(config, { logger });
  // A pool per step, as each has a queue of its own: a backlog of pricing never holds a zone's
  // matching up in the threads either.
  const threads = (filename: string) =>
    new Piscina({
      filename,
      minThreads: 1,
      maxThreads: config.cpuThreads,
    });
  const pricePool = threads(opts.priceTask ?? PRICE_TASK);
  const matchPool = threads(MATCH_TASK);
  // A thread that dies outside a task would otherwise be an unhandled 'error' event.
  for (const pool of [pricePool, matchPool]) pool.on('error', (error: unknown) => logger.error({ err: coerceError(error) }, 'piscina thread failed'));
  const priceMany = (inputs: readonly PricingInput[]) => pricePool.run(inputs) as Promise<PricingResult[]>;
  const match = (input: MatchInput) => matchPool.run(input) as Promise<MatchOutput>;
  const zoneLoad = new ZoneLoad(db);
  const producerRedis = createProducerRedis(config);
  producerRedis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'producer redis error'));
  const { change, deps: writer } = createOrderWriter(db, producerRedis, config);
  const retry = retryPolicyFrom(config);
  const zoneLock = new ZoneLocks(producerRedis, { prefix: config.cachePrefix, lockTimeoutMs: config.lockTtlMs });
  const dispatchQueue = createQueue(QUEUE_NAMES.dispatch, { connection: producerRedis, prefix: config.queuePrefix });
  const notificationsQueue = createQueue(QUEUE_NAMES.notifications, { connection: producerRedis, prefix: config.queuePrefix });
  for (const queue of [dispatchQueue, notificationsQueue]) {
    queue.on('error', (error) => logger.debug({ err: coerceError(error) }, 'queue error'));
  }

  /** Every priced order of a window joins one delayed dispatch job of its zone (same job id). */
  const bookDispatch = async (zoneId: string, atOnce = false) => {
    const now = Date.now();
    const windowStart = atOnce ? now : now - (now % config.dispatchWindowMs);
    const delay = atOnce ? 0 : windowStart + config.dispatchWindowMs - now;
    await dispatchQueue.add('dispatch.zone', { zoneId }, { jobId: dispatchJobId(zoneId, windowStart), delay });
  };
  const notifyDispatched = async (orderIds: readonly string[]) => {
    const notifications = orderIds.flatMap((orderId) => DISPATCHED_NOTIFICATIONS.map((kind) => ({ orderId, kind })));
    await enqueueNotificationBatch(notificationsQueue, notifications, config.redisTimeoutMs);
  };

  // The price jobs in flight are priced together (one read, one thread call, one commit), and each
  // batch books its zones' dispatch windows once. A zone whose booking fails fails the jobs of its
  // orders, whose retries find them PRICED and book it again.
  const pricing = new MicroBatcher<string, PriceOutcome>(
    async (orderIds) => {
      const results = await priceOrders({ ...writer, change, priceMany, zoneLoad, actor: 'worker:price' }, orderIds);
      const zoneOwed = (result: ItemOutcome<PriceOutcome>) =>
        !result.ok ? undefined : result.value.outcome === 'priced' ? result.value.zoneId : result.value.outcome === 'already-moved-on' ? result.value.pricedInZone : undefined;
      const zones = [...new Set(results.map(zoneOwed).filter((zoneId): zoneId is string => zoneId !== undefined))];
      const booked = await Promise.allSettled(zones.map((zoneId) => bookDispatch(zoneId)));
      const bookingFailed = new Map<string, Error>();
      booked.forEach((result, index) => {
        if (result.status === 'rejected') bookingFailed.set(zones[index]!, coerceError(result.reason));
      });
      return results.map((result) => {
        const failure = bookingFailed.get(zoneOwed(result) ?? '');
        return failure ? { ok: false, error: failure } : result;
      });
    },
    {
      maxSize: config.priceBatchMax,
      maxWaitMs: config.priceBatchWaitMs,
      maxInFlight: batchesInFlight(config.priceBatchMax, config.orderWorkerConcurrency),
    },
  );
  const priceProcessor = async (job: Job) => {
    if (job.name !== 'order.price') throw new UnrecoverableError(`unknown job name "${job.name}" on the orders queue`);
    return priceOrderJob(parsePayload('order.price', job.data), { priceOrder: (orderId) => pricing.submit(orderId) });
  };
  const dispatchProcessor = async (job: Job) => {
    if (job.name !== 'dispatch.zone') throw new UnrecoverableError(`unknown job name "${job.name}" on the dispatch queue`);
    return dispatchZoneJob(parsePayload('dispatch.zone', job.data), {
      db,
      writer,
      match,
      notifyDispatched,
      dispatchAgain: (zoneId) => bookDispatch(zoneId, true),
      dispatchLater: (zoneId) => bookDispatch(zoneId),
      zoneLock,
      batchSize: config.dispatchBatchSize,
      maxBatchesPerRun: config.dispatchMaxBatchesPerRun,
      radiusMeters: config.dispatchRadiusMeters,
      retry,
      logger: logger.child({ job: job.id, name: job.name }),
    });
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
    processor: priceProcessor,
    concurrency: config.orderWorkerConcurrency,
    config,
    logger,
    onFailed: (job, error, final) => {
      logger.warn({ job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error }, 'order job failed');
      if (final && job.name === 'order.price' && error.name !== 'UnrecoverableError') recordPricingFailed(job, error);
    },
  });
  // A failed run leaves its orders PRICED: the next run of the zone, or the reconciler, takes them.
  const dispatching = startSupervisedWorker({
    queue: QUEUE_NAMES.dispatch,
    processor: dispatchProcessor,
    concurrency: config.dispatchWorkerConcurrency,
    config,
    logger,
    onFailed: (job, error, final) => logger.warn({ job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error }, 'dispatch run failed'),
  });

  return {
    get worker() {
      return supervised.worker;
    },
    get dispatchWorker() {
      return dispatching.worker;
    },
    async close() {
      await Promise.all([supervised.close(), dispatching.close()]);
      await Promise.all(recording);
      // A worker the watchdog replaced may still have a batch out.
      await pricing.idle();
      await Promise.all([pricePool.destroy(), matchPool.destroy()]);
      await Promise.all([dispatchQueue.close(), notificationsQueue.close()]);
      producerRedis.disconnect();
      await db.destroy();
    },
  };
}
