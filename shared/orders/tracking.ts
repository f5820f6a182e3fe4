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

export interface TrackingParts {
  readonly rider: (order: OrderView) => Promise<RiderPosition | null>;
  readonly eta: (order: OrderView) => Promise<EtaEstimate | null>;
}

/** The parts as they are read from MySQL. */
export function mysqlTrackingParts(db: Db): TrackingParts {
  return {
    rider: async (order) => {
      if (!order.riderId) return null;
      const row = await db('riders').select('id', 'lat', 'lng', 'updated_at').where({ id: order.riderId }).first();
      return row
        ? { riderId: String(row.id), lat: Number(row.lat), lng: Number(row.lng), updatedAt: new Date(row.updated_at).toISOString() }
        : null;
    },
    eta: async (order) => {
      if (order.etaSeconds === null) return null;
      const dispatched = await db('order_events')
        .select('created_at')
        .where({ order_id: order.id, to_status: 'DISPATCHED' })
        .orderBy('version', 'desc')
        .first();
      if (!dispatched) return null;
      const dispatchedAt = new Date(dispatched.created_at);
      const elapsed = (Date.now() - dispatchedAt.getTime()) / 1000;
      return { remainingSeconds: Math.max(0, Math.round(order.etaSeconds - elapsed)), dispatchedAt: dispatchedAt.toISOString() };
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
  };
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
