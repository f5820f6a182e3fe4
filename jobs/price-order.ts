import { UnrecoverableError } from 'bullmq';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import type { ChangeOrder } from '../shared/orders/order-writer.ts';
import type { ZoneLoad } from '../shared/orders/zone-load.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface PriceOrderDeps {
  readonly db: Db;
  /** Writes through the lock-mark-update-reload routine. */
  readonly change: ChangeOrder;
  /** Runs the pricing computation off the event loop (a piscina thread). */
  readonly price: (input: PricingInput) => Promise<PricingResult>;
  readonly zoneLoad: ZoneLoad;
  readonly logger: Logger;
}

export type PriceOrderOutcome = { readonly outcome: 'priced'; readonly zoneId: string } | { readonly outcome: 'already-moved-on' };

/**
 * CREATED -> PRICED with fee and ETA. Run twice (a duplicate job, a retry after a crash), the
 * second run finds the order no longer CREATED and changes nothing.
 */
export async function priceOrderJob(payload: JobPayloads['order.price'], deps: PriceOrderDeps): Promise<PriceOrderOutcome> {
  const order = await deps.db('orders')
    .select('id', 'status', 'version', 'attempts', 'rider_id', 'zone_id', 'pickup_lat', 'pickup_lng', 'dropoff_lat', 'dropoff_lng', 'items')
    .where({ id: payload.orderId })
    .first();
  if (!order) throw new UnrecoverableError(`order ${payload.orderId} does not exist`);
  if (order.status !== 'CREATED') return { outcome: 'already-moved-on' };

  const items: unknown = typeof order.items === 'string' ? JSON.parse(order.items) : order.items;
  const load = await deps.zoneLoad.get(String(order.zone_id));
  const price = await deps.price({
    pickup: { lat: Number(order.pickup_lat), lng: Number(order.pickup_lng) },
    dropoff: { lat: Number(order.dropoff_lat), lng: Number(order.dropoff_lng) },
    itemCount: Array.isArray(items) ? items.length : 1,
    openOrdersInZone: load.openOrders,
    freeRidersInZone: load.freeRiders,
  });
  const result = await deps.change({
    orderId: payload.orderId,
    to: 'PRICED',
    from: ['CREATED'],
    expected: { id: String(order.id), status: 'CREATED', version: Number(order.version), riderId: null, attempts: Number(order.attempts) },
    actor: 'worker:price',
    reason: `${price.distanceMeters} m, surge ${price.surge}`,
    // Moving forward ends the failure streak: the next failure state starts its own budget.
    patch: { fee_cents: price.feeCents, eta_seconds: price.etaSeconds, attempts: 0, last_error: null },
  });
  if (result.kind === 'not_found') throw new UnrecoverableError(`order ${payload.orderId} does not exist`);
  return result.kind === 'done' ? { outcome: 'priced', zoneId: String(order.zone_id) } : { outcome: 'already-moved-on' };
}
