import { OrderCache } from '../cache/order-cache.ts';
import { OrderLocks } from '../cache/order-locks.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import type { Redis } from '../redis.ts';
import { changeOrder, type OrderChangeDeps } from './change-order.ts';
import type { OrderRecord } from './read-order.ts';
import type { TransitionRequest, TransitionResult } from './transition-order.ts';

/** Changes one order through the lock-mark-update-reload routine. */
export type ChangeOrder = (request: TransitionRequest) => Promise<TransitionResult>;

export interface OrderWriter {
  readonly change: ChangeOrder;
  /** The routine's parts, for the batch writers (compensation) that go through the same steps. */
  readonly deps: OrderChangeDeps;
  readonly cache: OrderCache;
  readonly locks: OrderLocks;
}

export function invalidationChannel(config: Pick<Config, 'cachePrefix'>): string {
  return `${config.cachePrefix}:invalidate`;
}

/** Every process that changes orders builds its writer here, from one config. */
export function createOrderWriter(
  db: Db,
  redis: Redis,
  config: Pick<Config, 'cachePrefix' | 'cacheTtlMs' | 'lockTtlMs' | 'lockWaitMs'>,
  opts: { onChanged?: (record: OrderRecord) => void } = {},
): OrderWriter {
  const cache = new OrderCache(redis, { prefix: config.cachePrefix, ttlMs: config.cacheTtlMs });
  const locks = new OrderLocks(redis, { prefix: config.cachePrefix, lockTimeoutMs: config.lockTtlMs, acquireTimeoutMs: config.lockWaitMs });
  const deps: OrderChangeDeps = {
    db,
    cache,
    locks,
    publisher: redis,
    invalidationChannel: invalidationChannel(config),
    ...(opts.onChanged ? { onChanged: opts.onChanged } : {}),
  };
  return { change: (request) => changeOrder(deps, request), deps, cache, locks };
}
