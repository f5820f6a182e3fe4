import { OrderCache } from '../cache/order-cache.ts';
import { createOrderLocks } from '../cache/order-locks.ts';
import type { LockReport } from '../cache/redis-locks.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../logger.ts';
import type { Redis } from '../redis.ts';
import type { OrderWriterDeps } from './write-orders.ts';

export function invalidationChannel(config: Pick<Config, 'cachePrefix'>): string {
  return `${config.cachePrefix}:invalidate`;
}

/** The order cache of one process, from its config. */
export function createOrderCache(redis: Redis, config: Pick<Config, 'cachePrefix' | 'cacheTtlMs' | 'cacheFinalTtlMs'>): OrderCache {
  return new OrderCache(redis, { prefix: config.cachePrefix, ttlMs: config.cacheTtlMs, finalTtlMs: config.cacheFinalTtlMs });
}

/** Every process that changes orders builds what the write routine needs here, from one config. */
export function createOrderWriter(
  db: Db,
  redis: Redis,
  config: Pick<Config, 'cachePrefix' | 'cacheTtlMs' | 'cacheFinalTtlMs' | 'lockTtlMs'>,
  opts: Pick<OrderWriterDeps, 'onChanged' | 'enqueueNotifications' | 'logger'> & { onLocked?: (report: LockReport) => void } = {},
): OrderWriterDeps {
  const { onLocked, ...rest } = opts;
  return {
    db,
    cache: createOrderCache(redis, config),
    locks: createOrderLocks(redis, { prefix: config.cachePrefix, ttlMs: config.lockTtlMs, ...(onLocked ? { onLocked } : {}) }),
    publisher: redis,
    invalidationChannel: invalidationChannel(config),
    ...rest,
  };
}
