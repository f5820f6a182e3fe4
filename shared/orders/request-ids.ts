import type { Db } from '../db.ts';

/**
 * The request ids of a set of orders (the X-Request-Id each was created under, stored by the intake
 * in the same INSERT), for the jobs that carry them to put on their log lines: one query per batch,
 * by primary key. Orders without one (created before request ids were stored) are left out.
 */
export async function readRequestIds(db: Db, orderIds: readonly string[]): Promise<Map<string, string>> {
  if (orderIds.length === 0) return new Map();
  const rows = (await db('orders').select('id', 'request_id').whereIn('id', orderIds).whereNotNull('request_id')) as {
    id: unknown;
    request_id: unknown;
  }[];
  return new Map(rows.map((row) => [String(row.id), String(row.request_id)]));
}
