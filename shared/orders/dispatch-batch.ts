import type { Knex } from 'knex';
import type { HeldLocks } from '../cache/order-locks.ts';
import { openLedgerEntriesIn } from '../notifications/notification-ledger.ts';
import { caseById, transactionRetryingDeadlocks } from '../db.ts';
import { reloadIntoCache, type OrderChangeDeps } from './change-order.ts';
import { nextAttemptAt, type RetryPolicy } from './retry-schedule.ts';
import { canTransition } from './state-machine.ts';

/** A PRICED order as the dispatch run read it, and what the run decided for it. */
export type DispatchDecision =
  | { readonly orderId: string; readonly version: number; readonly riderId: string }
  | { readonly orderId: string; readonly version: number; readonly failure: string };

export interface DispatchCommit {
  readonly dispatched: readonly string[];
  readonly failed: readonly string[];
  /** Left PRICED for the next run: busy elsewhere, changed meanwhile, or their rider filled up. */
  readonly deferred: number;
}

/**
 * Commits one dispatch batch through the steps of changeOrder, for all its orders at once:
 * lock the orders (Redis, without waiting), mark their cached versions stale, then in one
 * transaction lock the rows still PRICED at the version the run read and the riders they go to
 * (FOR UPDATE, in key order), give each rider at most its free slots, move the orders to
 * DISPATCHED (rider, order_events row, the two notifications' ledger rows) or DISPATCH_FAILED (the
 * reason, the next attempt backed off by their attempts), commit; reload the cache, publish.
 * Concurrent runs never give a rider more orders than its capacity nor an order two riders: both
 * rows are locked and re-read inside the transaction.
 */
export async function commitDispatchBatch(
  deps: OrderChangeDeps & { readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>; readonly actor: string },
  decisions: readonly DispatchDecision[],
): Promise<DispatchCommit> {
  if (decisions.length === 0) return { dispatched: [], failed: [], deferred: 0 };
  if (!canTransition('PRICED', 'DISPATCHED') || !canTransition('PRICED', 'DISPATCH_FAILED')) throw new Error('the state machine forbids dispatching');
  const { db, cache } = deps;
  const epoch = await cache.epoch();
  let locks: HeldLocks | undefined;
  try {
    locks = await deps.locks.tryLockMany(decisions.map((decision) => decision.orderId));
    const held = new Set(locks.orderIds);
    const mine = decisions.filter((decision) => held.has(decision.orderId));
    await cache.invalidateMany(mine.map((decision) => ({ id: decision.orderId, version: decision.version })));
    locks.signal.throwIfAborted();
    const outcome = await transactionRetryingDeadlocks(db, (trx) => commitIn(trx, deps, mine));
    const changed = [...outcome.dispatched, ...outcome.failed];
    // Not changed by us (moved on, or no slot left): the versions we marked are still theirs.
    const changedIds = new Set(changed);
    await cache.forgetMany(mine.map((decision) => decision.orderId).filter((id) => !changedIds.has(id)));
    if (changed.length > 0) await reloadIntoCache(deps, changed, epoch).catch(() => undefined); // stale marks keep readers on MySQL
    return { ...outcome, deferred: decisions.length - changed.length };
  } finally {
    await locks?.release();
  }
}

async function commitIn(
  trx: Knex.Transaction,
  deps: { readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>; readonly actor: string },
  decisions: readonly DispatchDecision[],
): Promise<{ dispatched: string[]; failed: string[] }> {
  if (decisions.length === 0) return { dispatched: [], failed: [] };
  const rows = await trx('orders')
    .select('id', 'version', 'attempts')
    .whereIn(
      'id',
      decisions.map((decision) => decision.orderId),
    )
    .where({ status: 'PRICED' })
    .orderBy('id')
    .forUpdate();
  const current = new Map(rows.map((row) => [String(row.id), { version: Number(row.version), attempts: Number(row.attempts) }]));
  const valid = decisions.filter((decision) => current.get(decision.orderId)?.version === decision.version);

  // Riders: lock those the batch gives orders to, and hand out at most their free slots.
  const wanted = valid.flatMap((decision) => ('riderId' in decision ? [decision] : []));
  const riderIds = [...new Set(wanted.map((decision) => decision.riderId))].sort();
  const riders =
    riderIds.length === 0
      ? []
      : await trx('riders').select('id', 'capacity', 'active_orders').whereIn('id', riderIds).where({ status: 'AVAILABLE' }).orderBy('id').forUpdate();
  const free = new Map(riders.map((rider) => [String(rider.id), Number(rider.capacity) - Number(rider.active_orders)]));
  const taken: { orderId: string; version: number; riderId: string }[] = [];
  for (const decision of wanted) {
    const slots = free.get(decision.riderId) ?? 0;
    if (slots <= 0) continue; // the rider filled up since the run read it: stays PRICED
    free.set(decision.riderId, slots - 1);
    taken.push(decision);
  }
  const failing = valid.flatMap((decision) => ('failure' in decision ? [decision] : []));

  const now = trx.raw('CURRENT_TIMESTAMP(3)');
  if (taken.length > 0) {
    const perRider = new Map<string, number>();
    for (const order of taken) perRider.set(order.riderId, (perRider.get(order.riderId) ?? 0) + 1);
    const riderIdsTaken = [...perRider.keys()];
    const slotsTaken = trx.raw('active_orders + ?', [caseById(trx, riderIdsTaken.map((riderId) => [riderId, perRider.get(riderId)!] as const))]);
    await trx('riders').whereIn('id', riderIdsTaken).update({ active_orders: slotsTaken });
    const riderCase = caseById(
      trx,
      taken.map((order) => [order.orderId, order.riderId] as const),
    );
    await trx('orders')
      .whereIn(
        'id',
        taken.map((order) => order.orderId),
      )
      .update({ status: 'DISPATCHED', rider_id: riderCase, version: trx.raw('version + 1'), attempts: 0, last_error: null, updated_at: now });
    await openLedgerEntriesIn(
      trx,
      taken.flatMap((order) => [
        { orderId: order.orderId, kind: 'customer.dispatched' as const },
        { orderId: order.orderId, kind: 'merchant.dispatched' as const },
      ]),
    );
  }
  for (const order of failing) {
    const attempts = current.get(order.orderId)!.attempts;
    await trx('orders')
      .where({ id: order.orderId })
      .update({
        status: 'DISPATCH_FAILED',
        version: trx.raw('version + 1'),
        last_error: order.failure,
        next_attempt_at: nextAttemptAt(deps.retry, attempts),
        updated_at: now,
      });
  }
  const actor = deps.actor.slice(0, 64);
  const events = [
    ...taken.map((order) => ({ order_id: order.orderId, from_status: 'PRICED', to_status: 'DISPATCHED', version: order.version + 1, reason: `rider ${order.riderId}`, actor })),
    ...failing.map((order) => ({ order_id: order.orderId, from_status: 'PRICED', to_status: 'DISPATCH_FAILED', version: order.version + 1, reason: order.failure, actor })),
  ];
  if (events.length > 0) await trx('order_events').insert(events);
  return { dispatched: taken.map((order) => order.orderId), failed: failing.map((order) => order.orderId) };
}
