import type { Knex } from 'knex';
import type { OrderCache } from '../cache/order-cache.ts';
import type { RedisLocks } from '../cache/redis-locks.ts';
import { transactionRetryingDeadlocks, type Db } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import type { OwedNotification } from '../notifications/kinds.ts';
import { notificationBatchJobId } from '../queues/job-ids.ts';
import type { Redis } from '../redis.ts';
import { applyChanges, lockOrderRows, type AppliedChange, type LockedOrder, type PlannedChange } from './apply-changes.ts';
import { readOrders, type OrderRecord } from './read-order.ts';
import { canTransition, notificationsOwed } from './state-machine.ts';

/** What the routine needs; every process that changes orders builds one (shared/orders/order-writer.ts). */
export interface OrderWriterDeps {
  readonly db: Db;
  readonly cache: OrderCache;
  readonly locks: RedisLocks;
  /** Publishes the invalidations, one message per change: `<id>:<version>,<id>:<version>,...`. */
  readonly publisher: Redis;
  readonly invalidationChannel: string;
  /** Told of every change at once (this process's L1), before the publish reaches anyone. */
  readonly onChanged?: (changed: { readonly versions: readonly OrderVersion[]; readonly records: readonly OrderRecord[] }) => void;
  /**
   * Puts a notification batch on its queue (the job id is the one its ledger rows carry). If it
   * fails, the rows are the outbox: the reconciler enqueues them.
   */
  readonly enqueueNotifications?: (jobId: string, notifications: readonly OwedNotification[]) => Promise<void>;
  readonly logger?: Logger;
}

export interface OrderVersion {
  readonly id: string;
  readonly version: number;
}

export interface OrderWrite {
  /** The orders to lock and read. */
  readonly orderIds: readonly string[];
  /** Who asked, recorded in order_events: 'worker:price', 'client:<id>', 'scheduler:compensate:cron'... */
  readonly actor: string;
  /** The batch job making the change, recorded in order_events. */
  readonly jobId?: string;
  /** How long to wait for orders another writer holds, in ms; 0 leaves them out (reported busy). */
  readonly waitMs: number;
  /**
   * Under the rows' locks: what becomes of each order. Orders left out do not change. Every change
   * must be legal in the state machine. Runs again if the transaction is retried (a deadlock).
   */
  plan(orders: ReadonlyMap<string, LockedOrder>, trx: Knex.Transaction): readonly PlannedChange[] | Promise<readonly PlannedChange[]>;
  /** In the same transaction, after the orders' rows are updated (a dispatch takes its riders' slots). */
  alsoDo?(trx: Knex.Transaction, applied: readonly AppliedChange[]): Promise<void>;
}

export interface WriteOutcome {
  readonly applied: readonly AppliedChange[];
  /** The orders as read under their locks, changed or not. */
  readonly locked: ReadonlyMap<string, LockedOrder>;
  /** Held by another writer for longer than waitMs: not read, not changed. */
  readonly busy: readonly string[];
  /** No such order. */
  readonly missing: readonly string[];
  /** The notifications the change owes, as one batch job (enqueued, or left to the reconciler). */
  readonly notifications: { readonly jobId: string; readonly items: readonly OwedNotification[]; readonly enqueued: boolean } | undefined;
  /**
   * Whether the reload of the cached orders went through. When Redis failed after the commit it did
   * not: the stale marks keep readers on MySQL until they expire.
   */
  readonly cacheReloaded: boolean;
}

/**
 * The one routine every change of orders goes through, for one order or a batch (a single order
 * is a batch of one), one round trip per step:
 *
 *   lock the orders (Redis, one pipeline)
 *   BEGIN; read and row-lock them (SELECT ... FOR UPDATE); plan the changes;
 *     mark their cached versions stale (Redis, one pipeline); update the rows, write their events,
 *     the ledger rows of the notifications they owe and the riders' slots; COMMIT
 *   reload the entries that were cached (one SELECT, one pipeline); publish one invalidation
 *   enqueue the owed notifications as one job; release the locks (one pipeline)
 *
 * The stale marks are written while the rows are locked, so the versions they mark are the ones
 * the UPDATE replaces; a reader that loaded a row a moment earlier cannot put it back, and the
 * reload only ever moves a cached version forward, so a holder paused past its lock's TTL cannot
 * either. An order nobody had cached is not written to Redis beyond its short-lived mark.
 *
 * Sharding: one transaction spans the batch's orders, so a batch must hold orders of one MySQL
 * shard; the batches the pipeline makes (an intake batch, a zone's dispatch batch) can be split by
 * the shard bits of their ids when orders move to several servers.
 */
export async function writeOrders(deps: OrderWriterDeps, write: OrderWrite): Promise<WriteOutcome> {
  const none = { applied: [], locked: new Map(), busy: [], missing: [], notifications: undefined, cacheReloaded: true };
  if (write.orderIds.length === 0) return none;
  const [locks, epoch] = await Promise.all([deps.locks.lock(write.orderIds, { waitMs: write.waitMs }), deps.cache.epoch()]);
  try {
    if (locks.held.length === 0) return { ...none, busy: locks.busy };
    const committed = await transactionRetryingDeadlocks(deps.db, async (trx) => {
      const locked = await lockOrderRows(trx, locks.held);
      const changes = (await write.plan(locked, trx)).map((change) => {
        const row = locked.get(change.orderId);
        if (!row) throw new Error(`order ${change.orderId}: planned a change of an order not locked by this write`);
        if (!canTransition(row.status, change.to)) throw new Error(`order ${change.orderId}: ${row.status} -> ${change.to} is not a legal transition`);
        return { change, locked: row };
      });
      if (changes.length === 0) return { locked, applied: [] as AppliedChange[], cached: [] as boolean[], owed: [] as OwedNotification[], notifyJobId: null };
      // A holder paused past its locks' TTL learns it here, before it writes anything.
      locks.assertHeld();
      const cached = await deps.cache.markStaleMany(changes.map(({ locked: row }) => ({ id: row.id, version: row.version })));
      const owed = changes.flatMap(({ change }) => notificationsOwed(change.to).map((kind) => ({ orderId: change.orderId, kind })));
      const notifyJobId = owed.length > 0 ? notificationBatchJobId(owed) : null;
      const applied = await applyChanges(trx, changes, { actor: write.actor, jobId: write.jobId ?? null, owed, notifyJobId });
      await write.alsoDo?.(trx, applied);
      // A lock lost mid-change (its renewal failed past its TTL) may now be another writer's.
      locks.assertHeld();
      return { locked, applied, cached, owed, notifyJobId };
    });
    const { locked, applied, owed, notifyJobId } = committed;
    const missing = locks.held.filter((id) => !locked.has(id));
    if (applied.length === 0) return { ...none, locked, busy: locks.busy, missing };

    const cacheReloaded = await reload(
      deps,
      applied,
      applied.filter((_, index) => committed.cached[index]).map((change) => change.orderId),
      epoch,
    );
    let notifications: WriteOutcome['notifications'];
    if (notifyJobId !== null) {
      const enqueued = deps.enqueueNotifications
        ? await deps.enqueueNotifications(notifyJobId, owed).then(
            () => true,
            (error: unknown) => {
              deps.logger?.warn({ err: coerceError(error), jobId: notifyJobId, count: owed.length }, 'notifications owed but not enqueued; the reconciler enqueues them');
              return false;
            },
          )
        : false;
      notifications = { jobId: notifyJobId, items: owed, enqueued };
    }
    return { applied, locked, busy: locks.busy, missing, notifications, cacheReloaded };
  } finally {
    await locks.release();
  }
}

/**
 * The cache's half of the routine: the changed orders that were cached are read again and filled
 * (compare-and-set, refused if Redis was emptied since `epoch`), this process is told, and one
 * invalidation for every changed order goes to the others. Resolves false if Redis failed.
 */
async function reload(deps: OrderWriterDeps, applied: readonly AppliedChange[], cachedIds: readonly string[], epoch: string): Promise<boolean> {
  const versions = applied.map((change) => ({ id: change.orderId, version: change.version }));
  try {
    const records = cachedIds.length > 0 ? await readOrders(deps.db, cachedIds) : [];
    if (records.length > 0) await deps.cache.fillMany(records, epoch);
    deps.onChanged?.({ versions, records });
    await deps.publisher.publish(deps.invalidationChannel, versions.map(({ id, version }) => `${id}:${version}`).join(','));
    return true;
  } catch (error) {
    deps.onChanged?.({ versions, records: [] });
    deps.logger?.warn({ err: coerceError(error), orders: applied.length }, 'orders changed but the cache was not reloaded; the stale marks keep readers on MySQL');
    return false;
  }
}
