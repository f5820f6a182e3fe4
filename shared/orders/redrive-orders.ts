import type { Knex } from 'knex';
import { openLedgerEntriesIn } from '../notifications/notification-ledger.ts';
import type { OrderChangeDeps } from './change-order.ts';
import { readOrders } from './read-order.ts';
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
  /** Orders the selection matched before any was claimed. */
  readonly found: number;
  readonly redriven: readonly RedrivenOrder[];
  /** Moved to CANCELLED: their budget was spent. Each got a PENDING customer.cancelled ledger row. */
  readonly escalated: readonly string[];
  /** Matched, but busy (another writer held the order's lock or row) or changed meanwhile: left for the next run. */
  readonly skipped: number;
}

/**
 * One batch of compensation, through the same steps as changeOrder but for many orders at a time:
 *
 *   lock the orders (Redis, without waiting); mark their cached versions stale;
 *   claim the rows (SELECT ... FOR UPDATE SKIP LOCKED) and, in that transaction, move each one back
 *   to its retry state (PRICING_FAILED -> CREATED, DISPATCH_FAILED -> PRICED, attempts + 1) or,
 *   past its budget, to CANCELLED, with an order_events row each (and the cancel notification's
 *   ledger row); commit; reload the rows into the cache; publish the invalidations; release.
 *
 * Two compensators at once never take the same order: the Redis lock and SKIP LOCKED each leave it
 * to one of them. Enqueueing the re-driven orders is the caller's; should that fail, the rows are
 * the outbox and the reconciler enqueues them.
 */
export async function redriveOrders(deps: OrderChangeDeps & { readonly policy: RetryPolicy }, selection: RedriveSelection): Promise<RedriveBatch> {
  const { db, cache } = deps;
  const { status } = selection;
  const to = RETRY_STATE[status];
  const epoch = await cache.epoch();
  let query = db('orders').select('id', 'version').where({ status });
  query = selection.orderIds
    ? query.whereIn('id', selection.orderIds)
    : query.where('next_attempt_at', '<=', db.raw('CURRENT_TIMESTAMP(3)')).orderBy('next_attempt_at');
  const candidates = (await query.limit(selection.limit)).map((row) => ({ id: String(row.id), version: Number(row.version) }));
  if (candidates.length === 0) return { found: 0, redriven: [], escalated: [], skipped: 0 };

  const locks = await deps.locks.tryLockMany(candidates.map((candidate) => candidate.id));
  try {
    const versionOf = new Map(candidates.map((candidate) => [candidate.id, candidate.version]));
    const locked = locks.orderIds.map((id) => ({ id, version: versionOf.get(id)! }));
    await cache.invalidateMany(locked);
    locks.signal.throwIfAborted();

    const outcome = await db.transaction(async (trx) => claimAndMove(trx, deps.policy, selection, locked));
    const changed = [...outcome.redriven.map((order) => order.id), ...outcome.escalated];
    const changedIds = new Set(changed);
    const unchanged = locks.orderIds.filter((id) => !changedIds.has(id));
    // Nothing changed these rows: the versions we marked are still theirs and may be cached again.
    await cache.forgetMany(unchanged);
    if (changed.length > 0) await reloadIntoCache(deps, changed, epoch);
    return { found: candidates.length, ...outcome, skipped: candidates.length - changed.length };
  } finally {
    await locks.release();
  }

  async function claimAndMove(
    trx: Knex.Transaction,
    policy: RetryPolicy,
    request: RedriveSelection,
    locked: readonly { id: string; version: number }[],
  ): Promise<{ redriven: RedrivenOrder[]; escalated: string[] }> {
    if (locked.length === 0) return { redriven: [], escalated: [] };
    const rows = await trx('orders')
      .select('id', 'version', 'attempts', 'zone_id', 'last_error')
      .whereIn(
        'id',
        locked.map((order) => order.id),
      )
      .where({ status })
      .forUpdate()
      .skipLocked();
    const lockedVersion = new Map(locked.map((order) => [order.id, order.version]));
    // A row whose version moved since we marked it was changed by someone else: not ours to touch now.
    const claimed = rows.filter((row) => lockedVersion.get(String(row.id)) === Number(row.version));
    const escalate = claimed.filter((row) => !request.ignoreBudget && budgetSpent(policy, status, Number(row.attempts)));
    const escalating = new Set(escalate);
    const redrive = claimed.filter((row) => !escalating.has(row));
    if (!canTransition(status, to) || !canTransition(status, 'CANCELLED')) throw new Error(`state machine forbids re-driving ${status}`);

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
        reason: `re-drive ${Number(row.attempts) + 1}${request.ignoreBudget ? ' (operator, past any budget)' : ` of ${policy.budget[status]}`}`,
        actor: request.actor.slice(0, 64),
      })),
      ...escalate.map((row) => ({
        order_id: row.id,
        from_status: status,
        to_status: 'CANCELLED',
        version: Number(row.version) + 1,
        reason: `escalated: ${Number(row.attempts)} re-drives of ${status} spent; last error: ${row.last_error ?? 'none'}`.slice(0, 500),
        actor: request.actor.slice(0, 64),
      })),
    ];
    if (events.length > 0) await trx('order_events').insert(events);
    return {
      redriven: redrive.map((row) => ({ id: String(row.id), zoneId: String(row.zone_id), to, attempts: Number(row.attempts) + 1 })),
      escalated: escalate.map((row) => String(row.id)),
    };
  }
}

/** The cache's half of the routine for a batch: fill the new versions (compare-and-set), then tell every process. */
async function reloadIntoCache(deps: OrderChangeDeps, orderIds: readonly string[], epoch: string): Promise<void> {
  const records = await readOrders(deps.db, orderIds);
  await deps.cache.fillMany(records, epoch);
  for (const record of records) deps.onChanged?.(record);
  const pipeline = deps.publisher.pipeline();
  for (const { order } of records) pipeline.publish(deps.invalidationChannel, `${order.id}:${order.version}`);
  await pipeline.exec();
}
