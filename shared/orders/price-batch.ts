import type { Knex } from 'knex';
import type { HeldLocks } from '../cache/order-locks.ts';
import { caseById, transactionRetryingDeadlocks } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import type { ItemOutcome } from '../micro-batcher.ts';
import { reloadIntoCache, type OrderChangeDeps } from './change-order.ts';
import type { ChangeOrder } from './order-writer.ts';
import type { PricingInput, PricingResult } from './pricing.ts';
import { canTransition } from './state-machine.ts';
import type { ZoneLoad } from './zone-load.ts';

export interface PriceBatchDeps extends OrderChangeDeps {
  /** Prices many orders in one call off the event loop (a piscina thread). */
  readonly priceMany: (inputs: readonly PricingInput[]) => Promise<readonly PricingResult[]>;
  readonly zoneLoad: Pick<ZoneLoad, 'get'>;
  /** The one-order routine, which waits for a held lock: for the orders another writer holds now. */
  readonly change: ChangeOrder;
  readonly actor: string;
}

export type PriceOutcome =
  | { readonly outcome: 'priced'; readonly zoneId: string }
  /**
   * No longer CREATED. `pricedInZone`: it is PRICED, so its zone may still be owed the dispatch
   * booking of an earlier run that priced it and then failed.
   */
  | { readonly outcome: 'already-moved-on'; readonly pricedInZone?: string }
  | { readonly outcome: 'not-found' };

interface CreatedOrder {
  readonly id: string;
  readonly version: number;
  readonly zoneId: string;
  readonly input: Omit<PricingInput, 'openOrdersInZone' | 'freeRidersInZone'>;
}

interface Priced {
  readonly order: CreatedOrder;
  readonly price: PricingResult;
}

/**
 * CREATED -> PRICED for many orders at once, through the steps of changeOrder for all of them:
 * one read, one call into the pricing thread, the orders' Redis locks taken without waiting, their
 * cached versions marked stale, then one transaction that locks the rows (FOR UPDATE, in key order),
 * moves those still CREATED at the version read to PRICED (fee, ETA, an order_events row each) and
 * commits; the cache reloaded and the change published. Run twice (a duplicate job, a retry after a
 * crash), the second run finds the orders no longer CREATED and changes nothing. An order another
 * writer holds at the moment (a cancel) goes through changeOrder on its own, which waits its turn.
 * Answers each order id asked, in order (the same answer for an id asked twice): an order that
 * could not be priced fails on its own, the rest of the batch stands.
 */
export async function priceOrders(deps: PriceBatchDeps, orderIds: readonly string[]): Promise<ItemOutcome<PriceOutcome>[]> {
  if (!canTransition('CREATED', 'PRICED')) throw new Error('the state machine forbids pricing');
  const ids = [...new Set(orderIds)];
  const outcomes = new Map<string, ItemOutcome<PriceOutcome>>(ids.map((id) => [id, ok({ outcome: 'not-found' })]));
  const answer = () => orderIds.map((id) => outcomes.get(id)!);
  const rows = await deps
    .db('orders')
    .select('id', 'status', 'version', 'zone_id', 'pickup_lat', 'pickup_lng', 'dropoff_lat', 'dropoff_lng', 'items')
    .whereIn('id', ids);
  const created: CreatedOrder[] = [];
  for (const row of rows) {
    const id = String(row.id);
    if (row.status !== 'CREATED') {
      outcomes.set(id, ok({ outcome: 'already-moved-on', ...(row.status === 'PRICED' ? { pricedInZone: String(row.zone_id) } : {}) }));
      continue;
    }
    let items: unknown;
    try {
      items = typeof row.items === 'string' ? JSON.parse(row.items) : row.items;
    } catch (error) {
      // This order's job fails (and is retried, then recorded PRICING_FAILED); the batch goes on.
      outcomes.set(id, { ok: false, error: new Error(`order ${id} has unreadable items: ${coerceError(error).message}`) });
      continue;
    }
    created.push({
      id,
      version: Number(row.version),
      zoneId: String(row.zone_id),
      input: {
        pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
        dropoff: { lat: Number(row.dropoff_lat), lng: Number(row.dropoff_lng) },
        itemCount: Array.isArray(items) ? items.length : 1,
      },
    });
  }
  if (created.length === 0) return answer();

  const zones = [...new Set(created.map((order) => order.zoneId))];
  const loads = new Map(await Promise.all(zones.map(async (zoneId) => [zoneId, await deps.zoneLoad.get(zoneId)] as const)));
  const prices = await deps.priceMany(
    created.map((order) => {
      const load = loads.get(order.zoneId)!;
      return { ...order.input, openOrdersInZone: load.openOrders, freeRidersInZone: load.freeRiders };
    }),
  );
  const priced: Priced[] = created.map((order, index) => ({ order, price: prices[index]! }));

  const { changed, movedOn } = await commitPricing(deps, priced);
  for (const { order } of priced) {
    const status = movedOn.get(order.id);
    if (status !== undefined) outcomes.set(order.id, movedOnOutcome(status, order.zoneId));
  }
  for (const { order } of priced) if (changed.has(order.id)) outcomes.set(order.id, ok({ outcome: 'priced', zoneId: order.zoneId }));
  // Held by another writer, or changed since the read without leaving CREATED: each on its own,
  // through the routine that waits for the lock and re-reads; one that fails fails its job alone.
  const leftOver = priced.filter(({ order }) => !changed.has(order.id) && !movedOn.has(order.id));
  const settled = await Promise.allSettled(
    leftOver.map(({ order, price }) =>
      deps.change({ orderId: order.id, to: 'PRICED', from: ['CREATED'], actor: deps.actor, reason: reasonOf(price), patch: patchOf(price) }),
    ),
  );
  settled.forEach((result, index) => {
    const { order } = leftOver[index]!;
    if (result.status === 'rejected') outcomes.set(order.id, { ok: false, error: coerceError(result.reason) });
    else if (result.value.kind === 'done') outcomes.set(order.id, ok({ outcome: 'priced', zoneId: order.zoneId }));
    else if (result.value.kind === 'not_found') outcomes.set(order.id, ok({ outcome: 'not-found' }));
    else outcomes.set(order.id, movedOnOutcome(result.value.current.status, order.zoneId));
  });
  return answer();
}

const ok = (value: PriceOutcome): ItemOutcome<PriceOutcome> => ({ ok: true, value });

/** Found no longer CREATED: if PRICED, its zone may still be owed the booking of whichever run priced it. */
const movedOnOutcome = (status: string, zoneId: string): ItemOutcome<PriceOutcome> =>
  ok({ outcome: 'already-moved-on', ...(status === 'PRICED' ? { pricedInZone: zoneId } : {}) });
const reasonOf = (price: PricingResult) => `${price.distanceMeters} m, surge ${price.surge}`;
// Moving forward ends the failure streak: the next failure state starts its own budget.
const patchOf = (price: PricingResult) => ({ fee_cents: price.feeCents, eta_seconds: price.etaSeconds, attempts: 0, last_error: null });

/** The orders this batch moved to PRICED, and of those it locked, the ones found no longer CREATED. */
async function commitPricing(
  deps: PriceBatchDeps,
  priced: readonly Priced[],
): Promise<{ changed: ReadonlySet<string>; movedOn: ReadonlyMap<string, string> }> {
  const { cache } = deps;
  const epoch = await cache.epoch();
  let locks: HeldLocks | undefined;
  try {
    locks = await deps.locks.tryLockMany(priced.map(({ order }) => order.id));
    const held = new Set(locks.orderIds);
    const mine = priced.filter(({ order }) => held.has(order.id));
    await cache.invalidateMany(mine.map(({ order }) => ({ id: order.id, version: order.version })));
    locks.signal.throwIfAborted();
    const { changed, movedOn } = await transactionRetryingDeadlocks(deps.db, (trx) => commitIn(trx, deps.actor, mine));
    // Not changed by us: the versions we marked are still theirs.
    await cache.forgetMany(mine.map(({ order }) => order.id).filter((id) => !changed.has(id)));
    if (changed.size > 0) await reloadIntoCache(deps, [...changed], epoch).catch(() => undefined); // stale marks keep readers on MySQL
    return { changed, movedOn };
  } finally {
    await locks?.release();
  }
}

/** The orders moved to PRICED, and those found no longer CREATED with the status found. */
async function commitIn(trx: Knex.Transaction, actor: string, priced: readonly Priced[]): Promise<{ changed: Set<string>; movedOn: Map<string, string> }> {
  if (priced.length === 0) return { changed: new Set(), movedOn: new Map() };
  const rows = await trx('orders')
    .select('id', 'status', 'version')
    .whereIn(
      'id',
      priced.map(({ order }) => order.id),
    )
    .orderBy('id')
    .forUpdate();
  const current = new Map(rows.map((row) => [String(row.id), { status: String(row.status), version: Number(row.version) }]));
  const movedOn = new Map(
    priced.flatMap(({ order }) => {
      const status = current.get(order.id)?.status ?? 'gone';
      return status === 'CREATED' ? [] : [[order.id, status] as const];
    }),
  );
  const valid = priced.filter(({ order }) => {
    const now = current.get(order.id);
    return now?.status === 'CREATED' && now.version === order.version;
  });
  if (valid.length === 0) return { changed: new Set(), movedOn };

  const caseOf = (value: (p: Priced) => number) =>
    caseById(
      trx,
      valid.map((p) => [p.order.id, value(p)] as const),
    );
  await trx('orders')
    .whereIn(
      'id',
      valid.map(({ order }) => order.id),
    )
    .update({
      status: 'PRICED',
      fee_cents: caseOf((p) => p.price.feeCents),
      eta_seconds: caseOf((p) => p.price.etaSeconds),
      version: trx.raw('version + 1'),
      attempts: 0,
      last_error: null,
      updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
    });
  await trx('order_events').insert(
    valid.map(({ order, price }) => ({
      order_id: order.id,
      from_status: 'CREATED',
      to_status: 'PRICED',
      version: order.version + 1,
      reason: reasonOf(price),
      actor: actor.slice(0, 64),
    })),
  );
  return { changed: new Set(valid.map(({ order }) => order.id)), movedOn };
}
