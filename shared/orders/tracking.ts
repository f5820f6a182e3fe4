import { LRUCache } from 'lru-cache';
import { EXACT_TTL } from '../cache/exact-ttl.ts';
import type { Db } from '../db.ts';
import type { SwitchReader } from '../switches/switches.ts';
import { withDeadline } from '../with-deadline.ts';
import type { OrderView } from './read-order.ts';

export interface RiderPosition {
  readonly riderId: string;
  readonly lat: number;
  readonly lng: number;
  readonly updatedAt: string;
}

export interface EtaEstimate {
  /** Seconds until delivery from now, by the quote made at pricing and the time since dispatch. */
  readonly remainingSeconds: number;
  readonly dispatchedAt: string;
}

export interface TrackingView {
  readonly order: OrderView;
  readonly rider: RiderPosition | null;
  readonly eta: EtaEstimate | null;
  /** Parts that did not answer in time (or failed): the rest is still worth showing. */
  readonly missing: readonly ('rider' | 'eta')[];
}

/** A part this process holds now: its value, LEFT_OUT (the view names it missing), or undefined (not held: ask). */
export const LEFT_OUT = Symbol('left out');
type Held<T> = T | typeof LEFT_OUT | undefined;

export interface TrackingParts {
  readonly rider: (order: OrderView) => Promise<RiderPosition | null>;
  readonly eta: (order: OrderView) => Promise<EtaEstimate | null>;
  /** The parts as held in memory, without waiting (a polling client's usual case); optional. */
  readonly riderHeld?: (order: OrderView) => Held<RiderPosition | null>;
  readonly etaHeld?: (order: OrderView) => Held<EtaEstimate | null>;
}

const NONE = Symbol('none');

export interface TrackingMemoryOptions {
  /** How long a rider's position is kept in this process (L1_TTL_MS: as long as an order copy may lag). */
  readonly riderTtlMs: number;
  /** Bound on the riders and order versions kept (L1_MAX). */
  readonly max: number;
}

/**
 * The parts as they are read from MySQL, kept in this process's memory so that a polling client
 * costs no query: an order version's dispatch time for as long as it is read (an order's events up
 * to a version never change; a new dispatch is a new version), a rider's position for
 * `riderTtlMs`. Concurrent misses of one key share one query.
 */
export function mysqlTrackingParts(db: Db, opts: TrackingMemoryOptions = { riderTtlMs: 1000, max: 10_000 }): TrackingParts {
  const riders = new LRUCache<string, RiderPosition | typeof NONE>({
    max: opts.max,
    ttl: Math.max(1, opts.riderTtlMs),
    ...EXACT_TTL,
    fetchMethod: async (riderId) => {
      const row = await db('riders').select('id', 'lat', 'lng', 'updated_at').where({ id: riderId }).first();
      return row ? { riderId: String(row.id), lat: Number(row.lat), lng: Number(row.lng), updatedAt: new Date(row.updated_at).toISOString() } : NONE;
    },
  });
  const dispatches = new LRUCache<string, string | typeof NONE, { id: string; version: number }>({
    max: opts.max,
    fetchMethod: async (_key, _stale, { context }) => {
      const dispatched = await db('order_events')
        .select('created_at')
        .where({ order_id: context.id, to_status: 'DISPATCHED' })
        .where('version', '<=', context.version)
        .orderBy('version', 'desc')
        .first();
      return dispatched ? new Date(dispatched.created_at).toISOString() : NONE;
    },
  });
  const etaOf = (etaSeconds: number, dispatchedAt: string): EtaEstimate => {
    const elapsed = (Date.now() - Date.parse(dispatchedAt)) / 1000;
    return { remainingSeconds: Math.max(0, Math.round(etaSeconds - elapsed)), dispatchedAt };
  };
  // What this process holds (undefined: not held); the async parts ask MySQL only then.
  const riderHeld = (order: OrderView): RiderPosition | null | undefined => {
    if (!order.riderId) return null;
    const found = riders.get(order.riderId);
    return found === NONE ? null : found;
  };
  const etaHeld = (order: OrderView): EtaEstimate | null | undefined => {
    if (order.etaSeconds === null) return null;
    const dispatchedAt = dispatches.get(`${order.id}:${order.version}`);
    return dispatchedAt === NONE ? null : dispatchedAt === undefined ? undefined : etaOf(order.etaSeconds, dispatchedAt);
  };
  return {
    riderHeld,
    etaHeld,
    rider: async (order) => {
      const held = riderHeld(order);
      if (held !== undefined || !order.riderId) return held ?? null;
      const found = await riders.fetch(order.riderId);
      return found === NONE || found === undefined ? null : found;
    },
    eta: async (order) => {
      const held = etaHeld(order);
      if (held !== undefined || order.etaSeconds === null) return held ?? null;
      const dispatchedAt = await dispatches.fetch(`${order.id}:${order.version}`, { context: { id: order.id, version: order.version } });
      return dispatchedAt === NONE || dispatchedAt === undefined ? null : etaOf(order.etaSeconds, dispatchedAt);
    },
  };
}

/**
 * The parts with the rider's position behind the `tracking-rider` switch: while it is off the
 * position is not read at all (no query, no wait) and the view names it in `missing`, as it does a
 * part that failed. The switch is read in this process's memory, never per request from Redis.
 */
export function riderBehindSwitch(parts: TrackingParts, switches: SwitchReader): TrackingParts {
  return {
    ...parts,
    rider: (order) => (switches.isOn('tracking-rider') ? parts.rider(order) : Promise.reject(new Error('the tracking-rider switch is off'))),
    ...(parts.riderHeld ? { riderHeld: (order: OrderView) => (switches.isOn('tracking-rider') ? parts.riderHeld!(order) : LEFT_OUT) } : {}),
  };
}

/**
 * The tracking view from the parts this process holds, in the same tick (no promise, no deadline
 * timers); undefined when a part is not held, for trackOrder to fetch.
 */
export function trackHeld(order: OrderView, parts: TrackingParts): TrackingView | undefined {
  const rider = parts.riderHeld?.(order);
  if (rider === undefined) return undefined;
  const eta = parts.etaHeld?.(order);
  if (eta === undefined) return undefined;
  const missing: ('rider' | 'eta')[] = [];
  if (rider === LEFT_OUT) missing.push('rider');
  if (eta === LEFT_OUT) missing.push('eta');
  return { order, rider: rider === LEFT_OUT ? null : rider, eta: eta === LEFT_OUT ? null : eta, missing };
}

/**
 * The tracking view: the rider's position and the ETA are fetched in parallel, each within its own
 * bound; a part that is slow or failing is left out (and named in `missing`) rather than holding
 * the whole answer back.
 */
export async function trackOrder(order: OrderView, parts: TrackingParts, partTimeoutMs: number): Promise<TrackingView> {
  const [rider, eta] = await Promise.allSettled([
    withDeadline(parts.rider(order), partTimeoutMs),
    withDeadline(parts.eta(order), partTimeoutMs),
  ]);
  const missing: ('rider' | 'eta')[] = [];
  if (rider.status === 'rejected') missing.push('rider');
  if (eta.status === 'rejected') missing.push('eta');
  return {
    order,
    rider: rider.status === 'fulfilled' ? rider.value : null,
    eta: eta.status === 'fulfilled' ? eta.value : null,
    missing,
  };
}
