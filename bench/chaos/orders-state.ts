/**
 * What MySQL says about a scenario's orders: those with an id above the scenario's boundary (ids
 * are time-ordered, and the run's traffic is the only writer of orders). Ids are 64-bit: compared
 * as unsigned integers in SQL, never through a string (MySQL would compare them as doubles).
 */
import type { Db } from '../../shared/db.ts';

/**
 * Not yet in a final or escalated state: on its way through the pipeline, or failed and waiting for
 * compensation to re-drive it or escalate it (CANCELLED). An accepted order left in one is lost.
 */
export const OPEN_STATUSES = ['CREATED', 'PRICED', 'PRICING_FAILED', 'DISPATCH_FAILED'] as const;
const OPEN_SQL = OPEN_STATUSES.map((st) => `'${st}'`).join(', ');

/** An id checked to be digits, for SQL text. */
export function sqlId(id: string | bigint): string {
  const text = String(id);
  if (!/^\d{1,20}$/.test(text)) throw new Error(`not an order id: ${text}`);
  return text;
}

export async function rows<T>(db: Db, sql: string): Promise<T[]> {
  return ((await db.raw(sql)) as [T[]])[0];
}

export async function count(db: Db, sql: string): Promise<number> {
  return Number((await rows<{ n: number | string }>(db, sql))[0]?.n ?? 0);
}

/** The highest order id so far ('0' when none): the boundary of the next scenario's orders. */
export async function maxOrderId(db: Db): Promise<string> {
  return String((await rows<{ id: string | number }>(db, 'SELECT COALESCE(MAX(id), 0) AS id FROM orders'))[0]?.id ?? '0');
}

/** The greatest of the ids ('0' when none). */
export function maxId(ids: readonly string[]): string {
  let best = 0n;
  for (const id of ids) if (BigInt(id) > best) best = BigInt(id);
  return String(best);
}

/**
 * Orders with an id in (above, upTo] still open, and their notifications still owed (not SENT): the
 * backlog a fault left, or a scenario's before its checks.
 */
export async function backlog(db: Db, above: string, upTo: string | null): Promise<{ open: number; owed: number }> {
  const range = `id > ${sqlId(above)}${upTo === null ? '' : ` AND id <= ${sqlId(upTo)}`}`;
  const open = await count(db, `SELECT COUNT(*) AS n FROM orders WHERE ${range} AND status IN (${OPEN_SQL})`);
  const owed = await count(db, `SELECT COUNT(*) AS n FROM notifications WHERE ${range.replace(/\bid\b/g, 'order_id')} AND status = 'PENDING'`);
  return { open, owed };
}

/** Status of each of the ids found (in pages: a scenario accepts thousands). */
export async function statusesOf(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 1000) {
    const page = ids.slice(i, i + 1000).map(sqlId);
    for (const row of await rows<{ id: string; status: string }>(db, `SELECT id, status FROM orders WHERE id IN (${page.join(',')})`)) found.set(String(row.id), row.status);
  }
  return found;
}
