import type { Db } from '../db.ts';
import { isTerminal } from './state-machine.ts';
import { ORDER_STATUSES, type OrderStatus } from './status.ts';

/** An order as the public API shows it. Ids are decimal strings: 64-bit integers do not fit a JS number. */
export interface OrderView {
  readonly id: string;
  readonly status: OrderStatus;
  readonly version: number;
  readonly merchantId: string;
  readonly riderId: string | null;
  readonly feeCents: number | null;
  readonly etaSeconds: number | null;
  readonly zoneId: string;
  readonly pickup: { readonly lat: number; readonly lng: number };
  readonly dropoff: { readonly lat: number; readonly lng: number; readonly address: string; readonly phone: string };
  readonly items: unknown;
  readonly note: string | null;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const COLUMNS = [
  'id', 'client_id', 'status', 'version', 'merchant_id', 'rider_id', 'fee_cents', 'eta_seconds', 'zone_id',
  'pickup_lat', 'pickup_lng', 'dropoff_lat', 'dropoff_lng', 'dropoff_address', 'dropoff_phone', 'items', 'note',
  'attempts', 'last_error', 'created_at', 'updated_at',
] as const;

type OrderRow = Record<(typeof COLUMNS)[number], unknown>;

/** An order with the client it belongs to (what the caches keep: reads check the owner). */
export interface OrderRecord {
  readonly clientId: string;
  readonly order: OrderView;
}

/** The order as it is in MySQL now. */
export async function readOrder(db: Db, orderId: string): Promise<OrderRecord | undefined> {
  const row = (await db('orders').select(COLUMNS).where({ id: orderId }).first()) as OrderRow | undefined;
  return row ? { clientId: String(row.client_id), order: toOrderView(row) } : undefined;
}

/** Many orders as they are in MySQL now (those that exist), in one query. */
export async function readOrders(db: Db, orderIds: readonly string[]): Promise<OrderRecord[]> {
  if (orderIds.length === 0) return [];
  const rows = (await db('orders').select(COLUMNS).whereIn('id', orderIds)) as OrderRow[];
  return rows.map((row) => ({ clientId: String(row.client_id), order: toOrderView(row) }));
}

/** Statuses an order can still leave: everything but DELIVERED and CANCELLED. */
export const ACTIVE_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter((status) => !isTerminal(status));

/**
 * A page of a keyset scan over the active orders: up to `limit` of them with ids above `afterId`
 * ('0' to start), in id order. The next page starts after the last id of this one.
 */
export async function readActiveOrdersAfter(db: Db, afterId: string, limit: number): Promise<OrderRecord[]> {
  const rows = (await db('orders')
    .select(COLUMNS)
    .where('id', '>', afterId)
    .whereIn('status', ACTIVE_STATUSES)
    .orderBy('id')
    .limit(limit)) as OrderRow[];
  return rows.map((row) => ({ clientId: String(row.client_id), order: toOrderView(row) }));
}

export function toOrderView(row: OrderRow): OrderView {
  const nullableNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(row.id),
    status: row.status as OrderStatus,
    version: Number(row.version),
    merchantId: String(row.merchant_id),
    riderId: row.rider_id === null ? null : String(row.rider_id),
    feeCents: nullableNumber(row.fee_cents),
    etaSeconds: nullableNumber(row.eta_seconds),
    zoneId: String(row.zone_id),
    pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
    dropoff: {
      lat: Number(row.dropoff_lat),
      lng: Number(row.dropoff_lng),
      address: String(row.dropoff_address),
      phone: String(row.dropoff_phone),
    },
    items: typeof row.items === 'string' ? JSON.parse(row.items) : row.items,
    note: row.note === null ? null : String(row.note),
    attempts: Number(row.attempts),
    lastError: row.last_error === null ? null : String(row.last_error),
    createdAt: new Date(row.created_at as string).toISOString(),
    updatedAt: new Date(row.updated_at as string).toISOString(),
  };
}
