import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { buildCostMatrix, type FreeRider, type MatchInput, type MatchOutput, type WaitingOrder } from '../shared/orders/dispatch-matching.ts';
import { openLedgerEntriesIn } from '../shared/notifications/notification-ledger.ts';
import type { ChangeOrder } from '../shared/orders/order-writer.ts';
import { nextAttemptAt, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface DispatchZoneDeps {
  readonly db: Db;
  /** Writes through the lock-mark-update-reload routine. */
  readonly change: ChangeOrder;
  /** Solves the assignment problem off the event loop (a piscina thread). */
  readonly match: (input: MatchInput) => Promise<MatchOutput>;
  /** Tells the customer and the merchant (the notifications queue); must not throw for a repeat. */
  readonly notifyDispatched: (orderIds: readonly string[]) => Promise<void>;
  /** Asks for another run of this zone at once (more orders were waiting than one batch takes). */
  readonly dispatchAgain: (zoneId: string) => Promise<void>;
  /**
   * One run per zone at a time (ZoneLocks); a run that finds its zone busy books the zone's next
   * window instead. Without it, concurrent runs are still correct, only slower.
   */
  readonly zoneLock?: { tryRun<T>(zoneId: string, work: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> };
  /** Books the zone's next dispatch window (what a run that found its zone busy does). */
  readonly dispatchLater?: (zoneId: string) => Promise<void>;
  readonly batchSize: number;
  readonly radiusMeters: number;
  /** When a DISPATCH_FAILED order is due for compensation's next re-drive. */
  readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>;
  readonly logger: Logger;
}

export interface DispatchOutcome {
  readonly considered: number;
  readonly dispatched: number;
  readonly failed: number;
  /** Lost to a concurrent run or a rider who filled up meanwhile; they stay PRICED for the next run. */
  readonly deferred: number;
  /** Another run held the zone: this one did nothing and booked the next window. */
  readonly busy?: boolean;
}

class RiderFull extends Error {
  override readonly name = 'RiderFull';
}

/**
 * One dispatch batch of a zone: the zone's PRICED orders are matched to free riders at once (the
 * optimal assignment of the cost matrix, solved in a thread). Each assignment commits on its own
 * and only if the order is still PRICED and the rider still has a free slot (a guarded UPDATE on
 * each), so concurrent runs never give a rider more orders than its capacity nor an order two
 * riders. An order no free rider in range can take goes to DISPATCH_FAILED with the reason.
 */
export async function dispatchZoneJob(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<DispatchOutcome> {
  const run = deps.zoneLock ? await deps.zoneLock.tryRun(payload.zoneId, () => dispatchBatch(payload, deps)) : { ran: true as const, value: await dispatchBatch(payload, deps) };
  if (!run.ran) {
    await (deps.dispatchLater ?? deps.dispatchAgain)(payload.zoneId);
    return { considered: 0, dispatched: 0, failed: 0, deferred: 0, busy: true };
  }
  const { outcome, again } = run.value;
  // Booked once the zone is free again, so the next run does not find it busy.
  if (again) await deps.dispatchAgain(payload.zoneId);
  deps.logger.debug({ zoneId: payload.zoneId, ...outcome }, 'dispatch run');
  return outcome;
}

async function dispatchBatch(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<{ outcome: DispatchOutcome; again: boolean }> {
  const { db } = deps;
  const orderRows = await db('orders')
    .select('id', 'version', 'attempts', 'pickup_lat', 'pickup_lng')
    .where({ zone_id: payload.zoneId, status: 'PRICED' })
    .orderBy('id')
    .limit(deps.batchSize);
  if (orderRows.length === 0) return { outcome: { considered: 0, dispatched: 0, failed: 0, deferred: 0 }, again: false };
  const orders: WaitingOrder[] = orderRows.map((row) => ({
    id: String(row.id),
    version: Number(row.version),
    attempts: Number(row.attempts),
    pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
  }));
  const riderRows = await db('riders')
    .select('id', 'lat', 'lng', 'capacity', 'active_orders')
    .where({ zone_id: payload.zoneId, status: 'AVAILABLE' })
    .whereRaw('active_orders < capacity');
  const riders: FreeRider[] = riderRows.map((row) => ({
    id: String(row.id),
    lat: Number(row.lat),
    lng: Number(row.lng),
    capacity: Number(row.capacity),
    activeOrders: Number(row.active_orders),
  }));

  const { costs, slotRider, inRange } = buildCostMatrix(orders, riders, deps.radiusMeters);
  const { pairs } = riders.length > 0 ? await deps.match({ costs }) : { pairs: [] as [number, number][] };

  const assigned = new Map<number, string>(pairs.map(([order, slot]) => [order, slotRider[slot]!]));
  const dispatchedIds: string[] = [];
  let counts: { failed: number; deferred: number };
  try {
    counts = await commitAssignments(orders, assigned, inRange, deps, dispatchedIds);
  } finally {
    // Whatever committed is told, even if a later order of the batch failed: a retry of this job
    // would not see those orders again (they are no longer PRICED).
    if (dispatchedIds.length > 0) await deps.notifyDispatched(dispatchedIds);
  }
  const { failed, deferred } = counts;
  const outcome = { considered: orders.length, dispatched: dispatchedIds.length, failed, deferred };
  return { outcome, again: orders.length === deps.batchSize || deferred > 0 };
}

/**
 * Commits the batch's outcome order by order: DISPATCHED where the assignment still holds,
 * DISPATCH_FAILED where no rider could take the order. Fills dispatchedIds as it goes.
 */
async function commitAssignments(
  orders: readonly WaitingOrder[],
  assigned: ReadonlyMap<number, string>,
  inRange: readonly boolean[],
  deps: DispatchZoneDeps,
  dispatchedIds: string[],
): Promise<{ failed: number; deferred: number }> {
  let failed = 0;
  let deferred = 0;
  for (const [index, order] of orders.entries()) {
    const expected = { id: order.id, status: 'PRICED' as const, version: order.version, riderId: null, attempts: order.attempts };
    const riderId = assigned.get(index);
    if (riderId === undefined) {
      const reason = inRange[index] ? 'no free rider in range' : `no rider within ${deps.radiusMeters} m`;
      const result = await deps.change({
        orderId: order.id,
        to: 'DISPATCH_FAILED',
        from: ['PRICED'],
        expected,
        actor: 'worker:dispatch',
        reason,
        patch: (current) => ({ last_error: reason, next_attempt_at: nextAttemptAt(deps.retry, current.attempts) }),
      });
      if (result.kind === 'done') failed += 1;
      continue;
    }
    try {
      const result = await deps.change({
        orderId: order.id,
        to: 'DISPATCHED',
        from: ['PRICED'],
        expected,
        actor: 'worker:dispatch',
        reason: `rider ${riderId}`,
        patch: { rider_id: riderId, attempts: 0, last_error: null },
        alsoDo: async (trx) => {
          const taken = await trx('riders')
            .where({ id: riderId, status: 'AVAILABLE' })
            .whereRaw('active_orders < capacity')
            .increment('active_orders', 1);
          if (taken !== 1) throw new RiderFull(`rider ${riderId} has no free slot any more`);
          // The notifications this dispatch owes, recorded with it: the outbox the reconciler reads.
          await openLedgerEntriesIn(trx, [
            { orderId: order.id, kind: 'customer.dispatched' },
            { orderId: order.id, kind: 'merchant.dispatched' },
          ]);
        },
      });
      if (result.kind === 'done') dispatchedIds.push(order.id);
      else deferred += 1;
    } catch (error) {
      if (!(error instanceof RiderFull)) throw error;
      deferred += 1; // rolled back: the order stays PRICED and joins the next run
    }
  }
  return { failed, deferred };
}
