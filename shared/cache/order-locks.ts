import type { Redis } from '../redis.ts';
import { RedisLocks, type LockReport } from './redis-locks.ts';

/**
 * One Redis lock per order, taken by the write routine for a batch of orders in one round trip
 * (shared/orders/write-orders.ts). The fencing is the cache's: every cached entry carries the
 * row's version and is written by compare-and-set, so a holder that lost its lock (paused past its
 * TTL) can never put an older version back.
 */
export function createOrderLocks(redis: Redis, opts: { prefix: string; ttlMs: number; onLocked?: (report: LockReport) => void }): RedisLocks {
  return new RedisLocks(redis, {
    keyOf: (orderId) => `${opts.prefix}:lock:order:${orderId}`,
    ttlMs: opts.ttlMs,
    ...(opts.onLocked ? { onLocked: opts.onLocked } : {}),
  });
}
