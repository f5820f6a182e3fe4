import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { buildCostMatrix, type FreeRider, type MatchInput, type MatchOutput, type WaitingOrder } from '../shared/orders/dispatch-matching.ts';
import type { OrderChangeDeps } from '../shared/orders/change-order.ts';
import { commitDispatchBatch, type DispatchDecision } from '../shared/orders/dispatch-batch.ts';
import type { RetryPolicy } from '../shared/orders/retry-schedule.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface DispatchZoneDeps {
  readonly db: Db;
  /** The order writer's parts: the batch commits through the lock-mark-update-reload steps. */
  readonly writer: OrderChangeDeps;
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
  /** Batches one run may commit while a full batch keeps waiting. Default 1 */
  readonly maxBatchesPerRun?: number;
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

/**
 * A dispatch run of a zone, in batches: each batch of the zone's PRICED orders is matched to free
 * riders at once (the optimal assignment of the cost matrix, solved in a thread), and the batch commits in one
 * transaction (shared/orders/dispatch-batch.ts) where each order is still PRICED at the version
 * read and its rider still has a free slot (both rows locked and re-read), so concurrent runs
 * never give a rider more orders than its capacity nor an order two riders. An order no free
 * rider in range can take goes to DISPATCH_FAILED with the reason.
 */
export async function dispatchZoneJob(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<DispatchOutcome> {
  const drain = () => drainZone(payload, deps);
  const run = deps.zoneLock ? await deps.zoneLock.tryRun(payload.zoneId, drain) : { ran: true as const, value: await drain() };
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

/**
 * Batch after batch while the zone has a full batch waiting and the last one moved orders, up to
 * maxBatchesPerRun: a backlog is drained by one run (one job, one zone lock) rather than by a
 * chain of jobs. Orders left over (the budget spent, or deferred) are owed another run.
 */
async function drainZone(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<{ outcome: DispatchOutcome; again: boolean }> {
  const total = { considered: 0, dispatched: 0, failed: 0, deferred: 0 };
  const budget = Math.max(1, deps.maxBatchesPerRun ?? 1);
  for (let batch = 1; ; batch++) {
    const { outcome, full } = await dispatchBatch(payload, deps);
    total.considered += outcome.considered;
    total.dispatched += outcome.dispatched;
    total.failed += outcome.failed;
    total.deferred += outcome.deferred;
    const moved = outcome.dispatched + outcome.failed > 0;
    if (full && moved && batch < budget) continue;
    return { outcome: total, again: full || outcome.deferred > 0 };
  }
}

async function dispatchBatch(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<{ outcome: DispatchOutcome; full: boolean }> {
  const { db } = deps;
  const orderRows = await db('orders')
    .select('id', 'version', 'pickup_lat', 'pickup_lng')
    .where({ zone_id: payload.zoneId, status: 'PRICED' })
    .orderBy('id')
    .limit(deps.batchSize);
  if (orderRows.length === 0) return { outcome: { considered: 0, dispatched: 0, failed: 0, deferred: 0 }, full: false };
  const orders: WaitingOrder[] = orderRows.map((row) => ({
    id: String(row.id),
    version: Number(row.version),
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
  const decisions: DispatchDecision[] = orders.map((order, index) => {
    const riderId = assigned.get(index);
    if (riderId !== undefined) return { orderId: order.id, version: order.version, riderId };
    const failure = inRange[index] ? 'no free rider in range' : `no rider within ${deps.radiusMeters} m`;
    return { orderId: order.id, version: order.version, failure };
  });
  const committed = await commitDispatchBatch({ ...deps.writer, retry: deps.retry, actor: 'worker:dispatch' }, decisions);
  // A retry of this job would not see the dispatched orders again (they are no longer PRICED):
  // their notifications go now (their ledger rows committed with them, for the reconciler if not).
  if (committed.dispatched.length > 0) await deps.notifyDispatched(committed.dispatched);
  const outcome = {
    considered: orders.length,
    dispatched: committed.dispatched.length,
    failed: committed.failed.length,
    deferred: committed.deferred,
  };
  return { outcome, full: orders.length === deps.batchSize };
}
