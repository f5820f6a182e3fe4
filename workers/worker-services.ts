import { Piscina } from 'piscina';
import { DispatchBooking } from '../jobs/book-dispatch.ts';
import { JobProducer } from '../jobs/producer.ts';
import type { WorkerServices } from '../jobs/services.ts';
import { ZoneLocks } from '../shared/cache/zone-locks.ts';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { WorkerMetrics } from '../shared/metrics/process-metrics.ts';
import type { MatchInput, MatchOutput } from '../shared/orders/dispatch-matching.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import { retryPolicyFrom } from '../shared/orders/retry-schedule.ts';
import { ZoneLoad } from '../shared/orders/zone-load.ts';
import { keepCompleted } from '../shared/queues/create-queue.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { openSwitches } from '../shared/switches/switches.ts';

export interface OwnedServices {
  readonly services: WorkerServices;
  /** Closes the thread pools, the producer's queues and every connection. */
  close(): Promise<void>;
}

const PRICE_TASK = new URL('./tasks/price-task.ts', import.meta.url).href;
const MATCH_TASK = new URL('./tasks/match-task.ts', import.meta.url).href;

/**
 * What the worker process holds for its jobs, wired from one config: a MySQL pool, a Redis
 * connection (producer, cache, locks), the write routine, the one producer, and a piscina pool per
 * CPU-bound step, started on first use (a pricing backlog never holds a zone's matching up in the
 * threads; a process that only runs maintenance starts none).
 */
export function createWorkerServices(config: Config, logger: Logger, opts: { priceTask?: string; metrics?: WorkerMetrics } = {}): OwnedServices {
  const db = createDb(config, { logger, statementTimeoutMs: config.dbStatementTimeoutMs });
  const redis = createProducerRedis(config);
  redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'worker redis error'));
  const producer = new JobProducer(redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs, removeOnComplete: keepCompleted(config) });
  const { metrics } = opts;
  const switches = openSwitches(config, { logger, redis, ...(metrics ? { metrics } : {}) });
  const writer = createOrderWriter(db, redis, config, {
    logger,
    enqueueNotifications: async (jobId, notifications) => {
      const added = await producer.add('notify.batch', { notifications: [...notifications] });
      if (added !== jobId) throw new Error(`notification batch ${jobId} was enqueued as ${added}: the id rules disagree`);
    },
    ...(metrics ? { onLocked: metrics.lockObserver('order') } : {}),
  });
  const pools = new Map<string, Piscina>();
  const pool = (name: 'price' | 'match', filename: string) => {
    let threads = pools.get(filename);
    if (!threads) {
      threads = new Piscina({ filename, minThreads: 1, maxThreads: config.cpuThreads });
      // A thread that dies outside a task would otherwise be an unhandled 'error' event.
      threads.on('error', (error: unknown) => logger.error({ err: coerceError(error) }, 'piscina thread failed'));
      pools.set(filename, threads);
      metrics?.trackPool(name, threads);
    }
    return threads;
  };
  const priceTask = opts.priceTask ?? PRICE_TASK;
  const services: WorkerServices = {
    config,
    db,
    redis,
    writer,
    producer,
    dispatch: new DispatchBooking(producer, config.dispatchWindowMs),
    priceMany: (inputs: readonly PricingInput[]) => pool('price', priceTask).run(inputs) as Promise<PricingResult[]>,
    match: (input: MatchInput) => pool('match', MATCH_TASK).run(input) as Promise<MatchOutput>,
    zoneLoad: new ZoneLoad(db),
    zoneLocks: new ZoneLocks(redis, { prefix: config.cachePrefix, lockTimeoutMs: config.lockTtlMs, ...(metrics ? { onLocked: metrics.lockObserver('zone') } : {}) }),
    retry: retryPolicyFrom(config),
    switches,
    ...(metrics ? { metrics } : {}),
  };
  return {
    services,
    async close() {
      await Promise.all([...pools.values()].map((threads) => threads.destroy()));
      await producer.close();
      await switches.close();
      redis.disconnect();
      await db.destroy();
    },
  };
}
