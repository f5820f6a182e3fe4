/**
 * Pricing: distance, ETA and fee of one order. Pure and CPU-only, so it runs in a piscina
 * thread (workers/tasks/price-task.ts) and never on a worker's event loop.
 */
export interface PricingInput {
  readonly pickup: { readonly lat: number; readonly lng: number };
  readonly dropoff: { readonly lat: number; readonly lng: number };
  readonly itemCount: number;
  /** Orders of the zone waiting for a rider, and riders free in it: their ratio drives the surge. */
  readonly openOrdersInZone: number;
  readonly freeRidersInZone: number;
}

export interface PricingResult {
  readonly distanceMeters: number;
  readonly etaSeconds: number;
  readonly feeCents: number;
  readonly surge: number;
}

const EARTH_RADIUS_M = 6_371_000;
const RIDER_SPEED_M_PER_S = 4.5; // ~16 km/h through city traffic
const ROAD_FACTOR = 1.35; // streets are longer than the straight line
const PREP_SECONDS = 600;
const BASE_FEE_CENTS = 300;
const FEE_PER_KM_CENTS = 120;
const FEE_PER_EXTRA_ITEM_CENTS = 20;
const MAX_SURGE = 2.5;

export function haversineMeters(a: { lat: number; lng: number }, b: { lat: number; lng: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** 1.0 while riders outnumber waiting orders, rising with the backlog per free rider, capped. */
export function surgeFactor(openOrders: number, freeRiders: number): number {
  const pressure = openOrders / Math.max(1, freeRiders);
  return Math.min(MAX_SURGE, Math.max(1, 1 + 0.25 * (pressure - 1)));
}

export function priceOrder(input: PricingInput): PricingResult {
  const distanceMeters = Math.round(haversineMeters(input.pickup, input.dropoff) * ROAD_FACTOR);
  const etaSeconds = Math.round(PREP_SECONDS + distanceMeters / RIDER_SPEED_M_PER_S);
  const surge = surgeFactor(input.openOrdersInZone, input.freeRidersInZone);
  const base = BASE_FEE_CENTS + (FEE_PER_KM_CENTS * distanceMeters) / 1000 + FEE_PER_EXTRA_ITEM_CENTS * Math.max(0, input.itemCount - 1);
  return { distanceMeters, etaSeconds, feeCents: Math.round(base * surge), surge: Math.round(surge * 100) / 100 };
}
