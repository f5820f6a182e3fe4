import type { Db } from '../db.ts';
import { requestIdOf } from '../orders/request-ids.ts';
import type { NotificationKind } from './kinds.ts';

/** What a notification is written from: the order and its merchant. */
export interface NotificationContext {
  readonly orderId: string;
  readonly dropoffPhone: string;
  readonly etaSeconds: number | null;
  readonly riderId: string | null;
  readonly merchantId: string;
  readonly merchantName: string;
  /** The X-Request-Id the order was created under (null before they were stored): for the batch's log line, never in a message. */
  readonly requestId: string | null;
}

/** The orders with their merchants, in one query; an order missing (or its merchant) is missing from the map. */
export async function loadNotificationContexts(db: Db, orderIds: readonly string[]): Promise<Map<string, NotificationContext>> {
  const contexts = new Map<string, NotificationContext>();
  if (orderIds.length === 0) return contexts;
  const rows = await db('orders')
    .join('merchants', 'merchants.id', 'orders.merchant_id')
    .select('orders.id', 'orders.dropoff_phone', 'orders.eta_seconds', 'orders.rider_id', 'merchants.id as merchant_id', 'merchants.name as merchant_name', 'orders.request_id')
    .whereIn('orders.id', [...new Set(orderIds)]);
  for (const row of rows) {
    contexts.set(String(row.id), {
      orderId: String(row.id),
      dropoffPhone: String(row.dropoff_phone),
      etaSeconds: row.eta_seconds === null ? null : Number(row.eta_seconds),
      riderId: row.rider_id === null ? null : String(row.rider_id),
      merchantId: String(row.merchant_id),
      merchantName: String(row.merchant_name),
      requestId: requestIdOf(row),
    });
  }
  return contexts;
}

/**
 * Recipient and text of one notification. Customers get an SMS to the order's dropoff phone;
 * merchants a push to their merchant app channel (`merchant:<id>`; merchants have no phone on file).
 */
export function composeNotification(kind: NotificationKind, context: NotificationContext): { to: string; text: string } {
  switch (kind) {
    case 'customer.dispatched': {
      const eta = context.etaSeconds === null ? '' : `, arriving in about ${Math.max(1, Math.round(context.etaSeconds / 60))} min`;
      return {
        to: context.dropoffPhone,
        text: `${context.merchantName}: your order ${context.orderId} has a rider and is on its way${eta}.`,
      };
    }
    case 'merchant.dispatched':
      return {
        to: `merchant:${context.merchantId}`,
        text: `Order ${context.orderId}: ${context.riderId === null ? 'a rider' : `rider ${context.riderId}`} is coming to pick it up.`,
      };
    case 'customer.cancelled':
      return { to: context.dropoffPhone, text: `${context.merchantName}: your order ${context.orderId} has been cancelled.` };
  }
}
