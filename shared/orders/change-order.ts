import type { OrderCache } from '../cache/order-cache.ts';
import type { HeldLock, OrderLocks } from '../cache/order-locks.ts';
import type { Db } from '../db.ts';
import type { Redis } from '../redis.ts';
import { readOrder, readOrders, type OrderRecord } from './read-order.ts';
import { transitionOrder, type TransitionRequest, type TransitionResult } from './transition-order.ts';

export interface OrderChangeDeps {
  readonly db: Db;
  readonly cache: OrderCache;
  readonly locks: OrderLocks;
  /** Publishes "<orderId>:<version>" so every process drops its in-memory copy. */
  readonly publisher: Redis;
  readonly invalidationChannel: string;
  /** Told of the new version at once (this process's L1), before the publish reaches anyone. */
  readonly onChanged?: (record: OrderRecord) => void;
}

/**
 * The one routine every writer of an order goes through:
 *
 *   lock(order) { mark the cached version stale; update the row (guarded by its version); reload the cache } ; release
 *
 * The stale mark (a tombstone of the current version, written by compare-and-set) means that a
 * reader who loaded the old row a moment ago cannot put it back, and the reload only ever moves the
 * cached version forward, so a holder paused past its lock's TTL cannot either. After the reload
 * an invalidation is published for the in-process caches.
 */
export async function changeOrder(deps: OrderChangeDeps, request: TransitionRequest): Promise<TransitionResult> {
  return deps.locks.withLock(request.orderId, async (lock: HeldLock) => {
    const epoch = await deps.cache.epoch();
    const beforeRecord = await readOrder(deps.db, request.orderId);
    if (!beforeRecord) return { kind: 'not_found' } as const;
    const before = beforeRecord.order;
    await deps.cache.invalidate(before.id, before.version);
    lock.signal.throwIfAborted();
    // If this throws, the outcome may be unknown (a lost COMMIT answer): the stale mark stays, and
    // reads of the order go to MySQL until the next change or the mark's TTL.
    const result = await transitionOrder(deps.db, {
      ...request,
      expected: { id: before.id, status: before.status, version: before.version, riderId: before.riderId, attempts: before.attempts },
    });
    if (result.kind !== 'done') {
      // Nothing changed (the step was illegal by now, or its side effect failed): the row's
      // version is still the one we marked stale, so it may simply be cached again.
      await deps.cache.forget(before.id);
      return result;
    }
    await reloadIntoCache(deps, [request.orderId], epoch);
    return result;
  });
}

/**
 * The cache's half of the routine, for one order or a batch: read the new versions, fill them
 * (compare-and-set, refused if Redis was emptied since `epoch`), tell this process, then publish
 * the invalidations for every other process.
 */
export async function reloadIntoCache(deps: OrderChangeDeps, orderIds: readonly string[], epoch: string): Promise<void> {
  const records = await readOrders(deps.db, orderIds);
  await deps.cache.fillMany(records, epoch);
  for (const record of records) deps.onChanged?.(record);
  const pipeline = deps.publisher.pipeline();
  for (const { order } of records) pipeline.publish(deps.invalidationChannel, `${order.id}:${order.version}`);
  await pipeline.exec();
}
