import { haversineMeters } from './pricing.ts';

export interface WaitingOrder {
  readonly id: string;
  readonly version: number;
  readonly pickup: { readonly lat: number; readonly lng: number };
}

export interface FreeRider {
  readonly id: string;
  readonly lat: number;
  readonly lng: number;
  readonly capacity: number;
  readonly activeOrders: number;
}

/** What the matching thread gets: plain numbers only, so it crosses the thread boundary cheaply. */
export interface MatchInput {
  /** costs[order][slot]; Infinity where the rider is out of range. */
  readonly costs: number[][];
}

export interface MatchOutput {
  /** [orderIndex, slotIndex] pairs of the optimal assignment, feasible pairs only. */
  readonly pairs: [number, number][];
}

/** A rider's load costs as much as this much extra distance per order already held. */
const LOAD_PENALTY_METERS = 800;

/**
 * The cost matrix of one dispatch batch: one row per waiting order, one column per free slot of a
 * rider (a rider with capacity 3 holding 1 order has 2 slots, the second costlier than the first,
 * so load spreads across riders). The cost is the distance from the rider to the pickup plus the
 * load penalty; riders beyond the radius cannot take the order.
 */
export function buildCostMatrix(
  orders: readonly WaitingOrder[],
  riders: readonly FreeRider[],
  radiusMeters: number,
): { costs: number[][]; slotRider: string[]; inRange: boolean[] } {
  const slotRider: string[] = [];
  const slotLoad: number[] = [];
  const slotOf: FreeRider[] = [];
  for (const rider of riders) {
    for (let load = rider.activeOrders; load < rider.capacity; load++) {
      slotRider.push(rider.id);
      slotLoad.push(load);
      slotOf.push(rider);
    }
  }
  const inRange: boolean[] = [];
  const costs = orders.map((order) => {
    let any = false;
    const row = slotOf.map((rider, slot) => {
      const distance = haversineMeters(rider, order.pickup);
      if (distance > radiusMeters) return Infinity;
      any = true;
      return distance + LOAD_PENALTY_METERS * slotLoad[slot]!;
    });
    inRange.push(any);
    return row;
  });
  return { costs, slotRider, inRange };
}
