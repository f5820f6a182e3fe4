import type { Knex } from 'knex';
import { openLedgerEntriesIn } from '../notifications/notification-ledger.ts';
import type { HeldLocks } from '../cache/order-locks.ts';
import { reloadIntoCache, type OrderChangeDeps } from './change-order.ts';
import { budgetSpent, type RetryPolicy } from './retry-schedule.ts';
import { RETRY_STATE, canTransition, type FailedStatus } from './state-machine.ts';

export interface RedriveSelection {
  readonly status: FailedStatus;
  /** Orders claimed at most in this batch. */
  readonly limit: number;
  /** Only these orders (an operator's choice), due or not; default: the orders whose next attempt is due. */
  readonly orderIds?: readonly string[];
  /** Re-drive even past the attempt budget (an operator's decision); default: escalate there. */
  readonly ignoreBudget?: boolean;
  /** Recorded in order_events: 'scheduler:compensate', 'operator'... */
  readonly actor: string;
}

export interface RedrivenOrder {
  readonly id: string;
  readonly zoneId: string;
  readonly to: (typeof RETRY_STATE)[FailedStatus];
  /** Re-drives so far, this one included. */
  readonly attempts: number;
}

export interface RedriveBatch {
  /** Orders the selection matched and claimed (rows another compensator holds are not seen). */
  readonly found: number;
  readonly redriven: readonly RedrivenOrder[];
  /** Moved to CANCELLED: their budget was spent. Each got a PENDING customer.cancelled ledger row. */
  readonly escalated: readonly string[];
  /** Claimed, but another writer held the order's Redis lock: left for the next run. */
  readonly skipped: number;
  /**
   * Whether the new versions went into the cache. When Redis failed after the commit they did not:
   * the stale marks keep readers on MySQL, and the moved orders are still returned to be enqueued.
   */
  readonly cacheReloaded: boolean;
}

/**
 * One batch of compensation, through the same steps as changeOrder but for many orders at a time,
 * in one transaction:
 *
 *   claim the rows (SELECT ... FOR UPDATE SKIP LOCKED: rows another compensator holds are not even
 *   seen, so concurrent runs split the work); lock the orders in Redis without waiting (one a
 *   writer is busy with is left for the next run); mark their cached versions stale; move each back
 *   to its retry state (PRICING_FAILED -> CREATED, DISPATCH_FAILED -> PRICED, attempts + 1) or,
 *   past its budget, to CANCELLED, with an order_events row each (and the cancel notification's
 *   ledger row); commit; reload the rows into the cache; publish the invalidations; release.
 *
 * Enqueueing the re-driven orders is the caller's; should that fail, the rows are the outbox and
 * the reconciler enqueues them.
 */
export async function redriveOrders(deps: OrderChangeDeps & { readonly policy: RetryPolicy }, selection: RedriveSelection): Promise<RedriveBatch> {
  const { db, cache, policy } = deps;
  const { status } = selection;
  const to = RETRY_STATE[status];
  if (!canTransition(status, to) || !canTransition(status, 'CANCELLED')) throw new Error(`the state machine forbids re-driving ${status}`);
  const epoch = await cache.epoch();
  let locks: HeldLocks | undefined;
  try {
    const outcome = await db.transaction(async (trx) => {
      let claim = trx('orders').select('id', 'version', 'attempts', 'zone_id', 'last_error').where({ status });
      claim = selection.orderIds
        ? claim.whereIn('id', selection.orderIds)
        : claim.where('next_attempt_at', '<=', trx.raw('CURRENT_TIMESTAMP(3)')).orderBy('next_attempt_at');
      const rows = await claim.limit(selection.limit).forUpdate().skipLocked();
      if (rows.length === 0) return { found: 0, redriven: [] as RedrivenOrder[], escalated: [] as string[] };
      locks = await deps.locks.tryLockMany(rows.map((row) => String(row.id)));
      const held = new Set(locks.orderIds);
      const claimed = rows.filter((row) => held.has(String(row.id)));
      await cache.invalidateMany(claimed.map((row) => ({ id: String(row.id), version: Number(row.version) })));
      locks.signal.throwIfAborted();
      return { found: rows.length, ...(await move(trx, claimed)) };
    });
    const changed = [...outcome.redriven.map((order) => order.id), ...outcome.escalated];
    // If the transaction threw, its outcome may be unknown (a lost COMMIT answer): the stale marks
    // stay, as in changeOrder. Once it committed, the caller must get the moved orders whatever
    // the cache does.
    const cacheReloaded = changed.length === 0 || (await reloadIntoCache(deps, changed, epoch).then(() => true, () => false));
    return { ...outcome, skipped: outcome.found - changed.length, cacheReloaded };
  } finally {
    await locks?.release();
  }

  async function move(trx: Knex.Transaction, claimed: readonly ClaimedRow[]): Promise<{ redriven: RedrivenOrder[]; escalated: string[] }> {
    const escalate = claimed.filter((row) => !selection.ignoreBudget && budgetSpent(policy, status, Number(row.attempts)));
    const escalating = new Set(escalate);
    const redrive = claimed.filter((row) => !escalating.has(row));
    const actor = selection.actor.slice(0, 64);
    const now = trx.raw('CURRENT_TIMESTAMP(3)');
    if (redrive.length > 0) {
      await trx('orders')
        .whereIn(
          'id',
          redrive.map((row) => row.id),
        )
        .update({ status: to, version: trx.raw('version + 1'), attempts: trx.raw('attempts + 1'), next_attempt_at: null, updated_at: now });
    }
    if (escalate.length > 0) {
      // last_error keeps the cause; the event says why the order was given up.
      await trx('orders')
        .whereIn(
          'id',
          escalate.map((row) => row.id),
        )
        .update({ status: 'CANCELLED', version: trx.raw('version + 1'), next_attempt_at: null, updated_at: now });
      await openLedgerEntriesIn(
        trx,
        escalate.map((row) => ({ orderId: String(row.id), kind: 'customer.cancelled' as const })),
      );
    }
    const events = [
      ...redrive.map((row) => ({
        order_id: row.id,
        from_status: status,
        to_status: to,
        version: Number(row.version) + 1,
        reason: `re-drive ${Number(row.attempts) + 1}${selection.ignoreBudget ? ' (operator, past any budget)' : ` of ${policy.budget[status]}`}`,
        actor,
      })),
      ...escalate.map((row) => ({
        order_id: row.id,
        from_status: status,
        to_status: 'CANCELLED',
        version: Number(row.version) + 1,
        reason: `escalated: ${Number(row.attempts)} re-drives of ${status} spent; last error: ${row.last_error ?? 'none'}`.slice(0, 500),
        actor,
      })),
    ];
    if (events.length > 0) await trx('order_events').insert(events);
    return {
      redriven: redrive.map((row) => ({ id: String(row.id), zoneId: String(row.zone_id), to, attempts: Number(row.attempts) + 1 })),
      escalated: escalate.map((row) => String(row.id)),
    };
  }
}

interface ClaimedRow {
  readonly id: string | number;
  readonly version: number;
  readonly attempts: number;
  readonly zone_id: string;
  readonly last_error: string | null;
}
