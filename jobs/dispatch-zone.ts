import type { Knex } from 'knex';
import type { ZoneLocks } from '../shared/cache/zone-locks.ts';
import type { Db } from '../shared/db.ts';
import { caseById } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { countOutcomes, type OrderLatencyMetrics, type StageMetrics } from '../shared/metrics/stage-metrics.ts';
import type { LockedOrder, PlannedChange } from '../shared/orders/apply-changes.ts';
import { buildCostMatrix, type FreeRider, type MatchInput, type MatchOutput, type WaitingOrder } from '../shared/orders/dispatch-matching.ts';
import { orderTrail, requestIdOf } from '../shared/orders/request-ids.ts';
import { nextAttemptAt, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { writeOrders, type OrderWriterDeps } from '../shared/orders/write-orders.ts';
import type { JobPayloads } from './payloads.ts';

export interface DispatchZoneDeps {
  readonly db: Db;
  /** The write routine's parts: a batch commits through lock, mark stale, update, reload. */
  readonly writer: OrderWriterDeps;
  /** Solves the assignment problem off the event loop (a piscina thread). */
  readonly match: (input: MatchInput) => Promise<MatchOutput>;
  /** Books another run of this zone at once (more orders were waiting than one run takes). */
  readonly dispatchAgain: (zoneId: string) => Promise<void>;
  /** Books the zone's next window (what a run that found its zone busy does). Default: dispatchAgain */
  readonly dispatchLater?: (zoneId: string) => Promise<void>;
  /** One run per zone at a time; without it concurrent runs are still correct, only slower. */
  readonly zoneLock?: Pick<ZoneLocks, 'tryRun'>;
  readonly batchSize: number;
  /** Batches one run may commit while a full batch keeps waiting. Default 1 */
  readonly maxBatchesPerRun?: number;
  readonly radiusMeters: number;
  /** When a DISPATCH_FAILED order is due for compensation's next re-drive. */
  readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>;
  /** This job's id, recorded in the orders' events. */
  readonly jobId?: string;
  readonly logger: Logger;
  /** The dispatch stage's batch size and outcomes, and each dispatched order's time since PRICED. */
  readonly metrics?: Pick<StageMetrics, 'stageBatchSize' | 'stageItems'> & Pick<OrderLatencyMetrics, 'pricedToDispatched'>;
}

export interface DispatchOutcome {
  readonly considered: number;
  readonly dispatched: number;
  readonly failed: number;
  /** Lost to a concurrent writer or a rider who filled up meanwhile; they stay PRICED for the next run. */
  readonly deferred: number;
  /** Another run held the zone: this one did nothing and booked the next window. */
  readonly busy?: boolean;
}

type Decision = { readonly order: WaitingOrder; readonly riderId: string } | { readonly order: WaitingOrder; readonly failure: string };

/**
 * A dispatch run of a zone, in batches: each batch of the zone's PRICED orders is matched to free
 * riders at once (the optimal assignment of the cost matrix, solved in a thread) and commits
 * through the write routine, which locks the orders; under those locks the batch locks the riders
 * it gives orders to, re-reads them, and hands out at most their free slots, so concurrent runs
 * never give a rider more orders than its capacity nor an order two riders. An order no free rider
 * in range can take goes to DISPATCH_FAILED with the reason. The notifications a batch owes go out
 * as one job (the write routine's).
 */
export async function dispatchZoneJob(payload: JobPayloads['dispatch.zone'], deps: DispatchZoneDeps): Promise<DispatchOutcome> {
  const started = performance.now();
  const drain = () => drainZone(payload.zoneId, deps);
  const run = deps.zoneLock ? await deps.zoneLock.tryRun(payload.zoneId, drain) : { ran: true as const, value: await drain() };
  if (!run.ran) {
    await (deps.dispatchLater ?? deps.dispatchAgain)(payload.zoneId);
    return { considered: 0, dispatched: 0, failed: 0, deferred: 0, busy: true };
  }
  const { outcome, again, requestIds } = run.value;
  // Booked once the zone is free again, so the next run does not find it busy.
  if (again) await deps.dispatchAgain(payload.zoneId);
  const ms = Math.round(performance.now() - started);
  // A run that found nothing waiting (a window booked for orders an earlier run took) is no news.
  const log = outcome.considered > 0 ? deps.logger.info.bind(deps.logger) : deps.logger.debug.bind(deps.logger);
  log(
    { zoneId: payload.zoneId, ...outcome, again, ms, ...orderTrail(requestIds.keys(), requestIds) },
    `dispatch run of zone ${payload.zoneId}: ${outcome.dispatched} dispatched, ${outcome.failed} failed, ${outcome.deferred} deferred of ${outcome.considered} in ${ms} ms`,
  );
  return outcome;
}

/**
 * Batch after batch while the zone has a full batch waiting and the last one moved orders, up to
 * maxBatchesPerRun: a backlog is drained by one run (one job, one zone lock) rather than by a
 * chain of jobs. Orders left over (the budget spent, or deferred) are owed another run.
 */
async function drainZone(zoneId: string, deps: DispatchZoneDeps): Promise<{ outcome: DispatchOutcome; again: boolean; requestIds: Map<string, string | null> }> {
  const total = { considered: 0, dispatched: 0, failed: 0, deferred: 0 };
  // Every order the run considered, with its request id (for the run's outcome line).
  const requestIds = new Map<string, string | null>();
  const budget = Math.max(1, deps.maxBatchesPerRun ?? 1);
  for (let batch = 1; ; batch++) {
    const { outcome, full } = await dispatchBatch(zoneId, deps, requestIds);
    total.considered += outcome.considered;
    total.dispatched += outcome.dispatched;
    total.failed += outcome.failed;
    total.deferred += outcome.deferred;
    const moved = outcome.dispatched + outcome.failed > 0;
    if (full && moved && batch < budget) continue;
    return { outcome: total, again: full || outcome.deferred > 0, requestIds };
  }
}

async function dispatchBatch(
  zoneId: string,
  deps: DispatchZoneDeps,
  requestIds: Map<string, string | null>,
): Promise<{ outcome: DispatchOutcome; full: boolean }> {
  const orders = await readWaitingOrders(deps.db, zoneId, deps.batchSize, requestIds);
  const readAt = performance.now();
  if (orders.length === 0) return { outcome: { considered: 0, dispatched: 0, failed: 0, deferred: 0 }, full: false };
  const riders = await readFreeRiders(deps.db, zoneId);
  const { costs, slotRider, inRange } = buildCostMatrix(orders, riders, deps.radiusMeters);
  const { pairs } = riders.length > 0 ? await deps.match({ costs }) : { pairs: [] as [number, number][] };
  const assigned = new Map<number, string>(pairs.map(([order, slot]) => [order, slotRider[slot]!]));
  const decisions: Decision[] = orders.map((order, index) => {
    const riderId = assigned.get(index);
    if (riderId !== undefined) return { order, riderId };
    return { order, failure: inRange[index] ? 'no free rider in range' : `no rider within ${deps.radiusMeters} m` };
  });

  const taken = new Map<string, number>();
  const committed = await writeOrders(deps.writer, {
    orderIds: orders.map((order) => order.id),
    actor: 'worker:dispatch',
    ...(deps.jobId ? { jobId: deps.jobId } : {}),
    waitMs: 0,
    plan: async (locked, trx) => {
      taken.clear();
      return planBatch(trx, decisions, locked, taken, deps.retry);
    },
    alsoDo: async (trx) => {
      if (taken.size === 0) return;
      await trx('riders')
        .whereIn('id', [...taken.keys()])
        .update({ active_orders: trx.raw('active_orders + ?', [caseById(trx, [...taken])]) });
    },
  });
  const dispatched = committed.applied.filter((change) => change.to === 'DISPATCHED').length;
  const failed = committed.applied.length - dispatched;
  const outcome = { considered: orders.length, dispatched, failed, deferred: orders.length - committed.applied.length };
  if (deps.metrics) observe(deps.metrics, outcome, orders, committed.applied, performance.now() - readAt);
  return { outcome, full: orders.length === deps.batchSize };
}

/**
 * Under the orders' row locks: keep the decisions whose order is still PRICED at the version read,
 * lock the riders they go to (FOR UPDATE, in key order) and give each at most its free slots; an
 * order whose rider filled up meanwhile stays PRICED for the next run.
 */
async function planBatch(
  trx: Knex.Transaction,
  decisions: readonly Decision[],
  locked: ReadonlyMap<string, LockedOrder>,
  taken: Map<string, number>,
  retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
): Promise<PlannedChange[]> {
  const valid = decisions.filter(({ order }) => {
    const current = locked.get(order.id);
    return current?.status === 'PRICED' && current.version === order.version;
  });
  const wanted = valid.flatMap((decision) => ('riderId' in decision ? [decision] : []));
  const riderIds = [...new Set(wanted.map((decision) => decision.riderId))].sort();
  const riders =
    riderIds.length === 0
      ? []
      : await trx('riders').select('id', 'capacity', 'active_orders').whereIn('id', riderIds).where({ status: 'AVAILABLE' }).orderBy('id').forUpdate();
  const free = new Map(riders.map((rider) => [String(rider.id), Number(rider.capacity) - Number(rider.active_orders)]));
  const changes: PlannedChange[] = [];
  for (const decision of valid) {
    if ('failure' in decision) {
      const attempts = locked.get(decision.order.id)!.attempts;
      changes.push({
        orderId: decision.order.id,
        to: 'DISPATCH_FAILED',
        reason: decision.failure,
        patch: { last_error: decision.failure, next_attempt_at: nextAttemptAt(retry, attempts) },
      });
      continue;
    }
    const slots = free.get(decision.riderId) ?? 0;
    if (slots <= 0) continue; // the rider filled up since the run read it: stays PRICED
    free.set(decision.riderId, slots - 1);
    taken.set(decision.riderId, (taken.get(decision.riderId) ?? 0) + 1);
    changes.push({
      orderId: decision.order.id,
      to: 'DISPATCHED',
      reason: `rider ${decision.riderId}`,
      patch: { rider_id: decision.riderId, attempts: 0, last_error: null },
    });
  }
  return changes;
}

/** One batch: its size and outcomes, and one in-memory observe per order dispatched. */
function observe(
  metrics: NonNullable<DispatchZoneDeps['metrics']>,
  outcome: Omit<DispatchOutcome, 'busy'>,
  orders: readonly PricedOrder[],
  applied: readonly { readonly orderId: string; readonly to: string }[],
  sinceReadMs: number,
): void {
  metrics.stageBatchSize.observe({ stage: 'dispatch' }, orders.length);
  countOutcomes(metrics, 'dispatch', { dispatched: outcome.dispatched, failed: outcome.failed, deferred: outcome.deferred });
  const ages = new Map(orders.map((order) => [order.id, order.pricedAgeMs]));
  for (const change of applied) {
    const ageMs = change.to === 'DISPATCHED' ? ages.get(change.orderId) : undefined;
    if (ageMs !== undefined) metrics.pricedToDispatched.observe((ageMs + sinceReadMs) / 1000);
  }
}

/** A waiting order, with how long ago it became PRICED (updated_at: only the write routine changes a row, and a PRICED row's last change made it PRICED). */
interface PricedOrder extends WaitingOrder {
  readonly pricedAgeMs: number;
}

/** The zone's PRICED orders, oldest first, a batch at most ((zone_id, status) index); their request ids noted in the same read. */
async function readWaitingOrders(db: Db, zoneId: string, limit: number, requestIds: Map<string, string | null>): Promise<PricedOrder[]> {
  const rows = await db('orders')
    .select('id', 'version', 'pickup_lat', 'pickup_lng', 'request_id', db.raw('TIMESTAMPDIFF(MICROSECOND, updated_at, CURRENT_TIMESTAMP(3)) AS priced_age_us'))
    .where({ zone_id: zoneId, status: 'PRICED' })
    .orderBy('id')
    .limit(limit);
  for (const row of rows) requestIds.set(String(row.id), requestIdOf(row));
  return rows.map((row) => ({
    id: String(row.id),
    version: Number(row.version),
    pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
    pricedAgeMs: Number(row.priced_age_us) / 1000,
  }));
}

/** The zone's available riders with a free slot. */
async function readFreeRiders(db: Db, zoneId: string): Promise<FreeRider[]> {
  const rows = await db('riders')
    .select('id', 'lat', 'lng', 'capacity', 'active_orders')
    .where({ zone_id: zoneId, status: 'AVAILABLE' })
    .whereRaw('active_orders < capacity');
  return rows.map((row) => ({
    id: String(row.id),
    lat: Number(row.lat),
    lng: Number(row.lng),
    capacity: Number(row.capacity),
    activeOrders: Number(row.active_orders),
  }));
}
