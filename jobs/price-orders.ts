import type { Db } from '../shared/db.ts';
import { coerceError, safeErrorMessage } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { countOutcomes, type OrderLatencyMetrics, type StageMetrics } from '../shared/metrics/stage-metrics.ts';
import type { LockedOrder } from '../shared/orders/apply-changes.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import { orderTrail, requestIdOf } from '../shared/orders/request-ids.ts';
import { nextAttemptAt, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { transitionOrders } from '../shared/orders/transition-orders.ts';
import { writeOrders, type OrderWriterDeps } from '../shared/orders/write-orders.ts';
import type { ZoneLoad } from '../shared/orders/zone-load.ts';
import type { JobPayloads } from './payloads.ts';

export interface PriceOrdersDeps {
  readonly db: Db;
  readonly writer: OrderWriterDeps;
  /** Prices many orders in one call off the event loop (a piscina thread). */
  readonly priceMany: (inputs: readonly PricingInput[]) => Promise<readonly PricingResult[]>;
  readonly zoneLoad: Pick<ZoneLoad, 'get'>;
  /** Books the zones' next dispatch windows (a no-op for a zone already booked in this window). */
  readonly bookDispatch: (zoneIds: readonly string[]) => Promise<void>;
  /** How long the second pass waits for orders another writer held during the first, in ms. */
  readonly lockWaitMs: number;
  /** When an order that cannot be priced is due for compensation's re-drive. */
  readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>;
  /** This job's id, recorded in the orders' events. */
  readonly jobId: string;
  readonly logger: Logger;
  /** The price stage's batch size and outcomes, and each priced order's time since its 202. */
  readonly metrics?: Pick<StageMetrics, 'stageBatchSize' | 'stageItems'> & Pick<OrderLatencyMetrics, 'createdToPriced'>;
}

export interface PriceOutcome {
  readonly priced: number;
  /** No longer CREATED (priced by an earlier run of this batch, cancelled, ...): left as they are. */
  readonly movedOn: number;
  /** Could not be priced (their data is unreadable): PRICING_FAILED with the reason, on their own. */
  readonly failed: number;
  readonly missing: number;
  readonly ms: number;
}

interface Created {
  readonly id: string;
  readonly version: number;
  readonly zoneId: string;
  /** The row's age when the batch read it, by MySQL's clock, in ms (for the 202 -> PRICED latency). */
  readonly ageMs: number;
  readonly input: Omit<PricingInput, 'openOrdersInZone' | 'freeRidersInZone'>;
}

const ACTOR = 'worker:price';
/** How old each row is by MySQL's own clock (no skew with this machine's, no time zone to agree on). */
const CREATED_AGE_US = 'TIMESTAMPDIFF(MICROSECOND, created_at, CURRENT_TIMESTAMP(3)) AS created_age_us';

/**
 * CREATED -> PRICED for a batch: one read, one call into the pricing thread, one commit through
 * the write routine (only the orders still CREATED at the version read move), then each zone's
 * dispatch window booked once. Orders another writer holds at that moment (a cancel) are priced
 * in a second pass that waits for their locks; any still held fail the job, whose retry acts only
 * on the orders still CREATED. An order that cannot be priced fails alone (PRICING_FAILED with
 * its reason), never its batch. Run twice, the second run finds the orders moved on.
 */
export async function priceOrdersJob(payload: JobPayloads['orders.price'], deps: PriceOrdersDeps): Promise<PriceOutcome> {
  const started = performance.now();
  const rows = await deps
    .db('orders')
    .select('id', 'status', 'version', 'zone_id', 'pickup_lat', 'pickup_lng', 'dropoff_lat', 'dropoff_lng', 'items', 'request_id', deps.db.raw(CREATED_AGE_US))
    .whereIn('id', [...new Set(payload.orderIds)]);
  const readAt = performance.now();
  // Read in the same SELECT, for the outcome line: following an order costs no round trip.
  const requestIds = new Map(rows.map((row) => [String(row.id), requestIdOf(row)]));
  const created: Created[] = [];
  const unreadable = new Map<string, string>();
  const zonesOwed = new Set<string>();
  for (const row of rows) {
    const id = String(row.id);
    // Priced by an earlier run that failed before its booking: its zone may still be owed one.
    if (row.status === 'PRICED') zonesOwed.add(String(row.zone_id));
    if (row.status !== 'CREATED') continue;
    const items = readItems(row.items);
    if (items instanceof Error) {
      unreadable.set(id, `order ${id} has unreadable items: ${items.message}`);
      continue;
    }
    created.push({
      id,
      version: Number(row.version),
      zoneId: String(row.zone_id),
      ageMs: Number(row.created_age_us) / 1000,
      input: {
        pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
        dropoff: { lat: Number(row.dropoff_lat), lng: Number(row.dropoff_lng) },
        itemCount: Array.isArray(items) ? items.length : 1,
      },
    });
  }

  const prices = await priceAll(deps, created);
  const commit = (orders: readonly Created[], waitMs: number) =>
    writeOrders(deps.writer, {
      orderIds: orders.map((order) => order.id),
      actor: ACTOR,
      jobId: deps.jobId,
      waitMs,
      plan: (locked) => orders.filter((order) => stillCreated(locked.get(order.id), order)).map((order) => priceChange(order, prices.get(order.id)!)),
    });
  const first = await commit(created, 0);
  const heldElsewhere = created.filter((order) => first.busy.includes(order.id));
  const second = heldElsewhere.length > 0 ? await commit(heldElsewhere, deps.lockWaitMs) : undefined;
  const applied = [...first.applied, ...(second?.applied ?? [])];
  for (const change of applied) zonesOwed.add(change.zoneId);

  const failed = unreadable.size > 0 ? await recordUnreadable(deps, unreadable) : 0;
  await deps.bookDispatch([...zonesOwed]);

  const stillBusy = second?.busy.length ?? 0;
  const outcome: PriceOutcome = {
    priced: applied.length,
    movedOn: rows.length - unreadable.size - applied.length - stillBusy,
    failed,
    missing: new Set(payload.orderIds).size - rows.length,
    ms: Math.round(performance.now() - started),
  };
  observe(deps, payload, outcome, created, applied, performance.now() - readAt);
  // The batch's one line, also when it fails (the failure's own line names the job, as this one does).
  deps.logger.info(
    { ...outcome, stillBusy, attempt: payload.attempt, ...orderTrail(payload.orderIds, requestIds) },
    `price batch: ${outcome.priced} priced, ${outcome.movedOn} moved on, ${outcome.failed} failed, ${outcome.missing} missing` +
      `${stillBusy > 0 ? `, ${stillBusy} held elsewhere` : ''} in ${outcome.ms} ms`,
  );
  if (stillBusy > 0) {
    throw new Error(`${stillBusy} of ${payload.orderIds.length} orders were held by other writers past ${deps.lockWaitMs} ms; the retry prices them`);
  }
  return outcome;
}

/**
 * Out of retries: the orders of the batch still CREATED are recorded PRICING_FAILED with the last
 * error, for compensation's backoff and budget.
 */
export async function recordPricingFailed(
  payload: JobPayloads['orders.price'],
  error: Error,
  deps: Pick<PriceOrdersDeps, 'writer' | 'retry' | 'jobId'>,
): Promise<number> {
  // Stored in the rows and their events: a database error's statement and quoted values stay out.
  const reason = safeErrorMessage(error).slice(0, 1000);
  const { outcome } = await transitionOrders(
    deps.writer,
    payload.orderIds.map((orderId) => ({
      orderId,
      to: 'PRICING_FAILED' as const,
      from: ['CREATED' as const],
      reason,
      patch: (current: LockedOrder) => ({ last_error: reason, next_attempt_at: nextAttemptAt(deps.retry, current.attempts) }),
    })),
    { actor: ACTOR, jobId: deps.jobId, waitMs: 0 },
  );
  return outcome.applied.length;
}

/** One batch: its size and outcomes, and one in-memory observe per order priced. */
function observe(
  deps: PriceOrdersDeps,
  payload: JobPayloads['orders.price'],
  outcome: PriceOutcome,
  created: readonly Created[],
  applied: readonly { readonly orderId: string }[],
  sinceReadMs: number,
): void {
  const { metrics } = deps;
  if (!metrics) return;
  metrics.stageBatchSize.observe({ stage: 'price' }, payload.orderIds.length);
  countOutcomes(metrics, 'price', { priced: outcome.priced, moved_on: outcome.movedOn, failed: outcome.failed, missing: outcome.missing });
  if (applied.length === 0) return;
  const ages = new Map(created.map((order) => [order.id, order.ageMs]));
  for (const change of applied) {
    const ageMs = ages.get(change.orderId);
    if (ageMs !== undefined) metrics.createdToPriced.observe((ageMs + sinceReadMs) / 1000);
  }
}

async function priceAll(deps: PriceOrdersDeps, created: readonly Created[]): Promise<Map<string, PricingResult>> {
  if (created.length === 0) return new Map();
  const zones = [...new Set(created.map((order) => order.zoneId))];
  const loads = new Map(await Promise.all(zones.map(async (zoneId) => [zoneId, await deps.zoneLoad.get(zoneId)] as const)));
  const prices = await deps.priceMany(
    created.map((order) => {
      const load = loads.get(order.zoneId)!;
      return { ...order.input, openOrdersInZone: load.openOrders, freeRidersInZone: load.freeRiders };
    }),
  );
  return new Map(created.map((order, index) => [order.id, prices[index]!]));
}

function stillCreated(locked: LockedOrder | undefined, read: Created): boolean {
  return locked?.status === 'CREATED' && locked.version === read.version;
}

function priceChange(order: Created, price: PricingResult) {
  return {
    orderId: order.id,
    to: 'PRICED' as const,
    reason: `${price.distanceMeters} m, surge ${price.surge}`,
    // Moving forward ends the failure streak: the next failure state starts its own budget.
    patch: { fee_cents: price.feeCents, eta_seconds: price.etaSeconds, attempts: 0, last_error: null },
  };
}

async function recordUnreadable(deps: PriceOrdersDeps, unreadable: ReadonlyMap<string, string>): Promise<number> {
  const { outcome } = await transitionOrders(
    deps.writer,
    [...unreadable].map(([orderId, reason]) => ({
      orderId,
      to: 'PRICING_FAILED' as const,
      from: ['CREATED' as const],
      reason,
      patch: (current: LockedOrder) => ({ last_error: reason, next_attempt_at: nextAttemptAt(deps.retry, current.attempts) }),
    })),
    { actor: ACTOR, jobId: deps.jobId, waitMs: deps.lockWaitMs },
  );
  return outcome.applied.length;
}

function readItems(raw: unknown): unknown {
  try {
    return typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch (error) {
    return coerceError(error);
  }
}
