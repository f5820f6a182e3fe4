import type { Db } from '../db.ts';

/**
 * The request ids of a set of orders (the X-Request-Id each was created under, stored by the intake
 * in the same INSERT): one query per batch, by primary key. Orders without one (created before
 * request ids were stored) are left out. The batch jobs do not call it: each reads `request_id` in
 * the SELECT it already runs (no extra round trip) and puts it on its outcome line (orderTrail).
 */
export async function readRequestIds(db: Db, orderIds: readonly string[]): Promise<Map<string, string>> {
  if (orderIds.length === 0) return new Map();
  const rows = (await db('orders').select('id', 'request_id').whereIn('id', orderIds).whereNotNull('request_id')) as {
    id: unknown;
    request_id: unknown;
  }[];
  return new Map(rows.map((row) => [String(row.id), String(row.request_id)]));
}

/** A row's request_id as the jobs keep it: null for an order from before request ids were stored. */
export function requestIdOf(row: { readonly request_id?: unknown }): string | null {
  return row.request_id === null || row.request_id === undefined ? null : String(row.request_id);
}

/**
 * What a batch's one outcome line carries so that `grep <order id>` and `grep <request id>` across
 * the processes' logs find it: the batch's order ids and, in the same order, their request ids (null
 * where none is known). About 60 bytes an order with UUID request ids: a 500-order price batch's
 * line is some 30 KB, written once per batch, never per order.
 */
export interface OrderTrail {
  readonly orderIds: readonly string[];
  readonly requestIds: readonly (string | null)[];
}

export function orderTrail(orderIds: Iterable<string>, requestIds: ReadonlyMap<string, string | null>): OrderTrail {
  const ids = [...new Set(orderIds)];
  return { orderIds: ids, requestIds: ids.map((id) => requestIds.get(id) ?? null) };
}
