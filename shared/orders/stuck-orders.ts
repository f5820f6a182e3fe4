import type { Db } from '../db.ts';
import type { OrderStatus } from './status.ts';

/**
 * What an operator asks about orders that have not moved for a while: how many sit in each state
 * and since when, which ones (oldest first), and where a chosen set of orders is now.
 *
 * "Not moved" is measured on updated_at, which every change of an order sets. Ages and the
 * cut-off are computed by MySQL (CURRENT_TIMESTAMP(3)), so the CLI's clock and time zone never
 * enter into it.
 *
 * Indexes: orders has (status, next_attempt_at), not (status, updated_at). The queries below use
 * the status prefix of that index and filter updated_at on the rows of the states asked; they are
 * meant for the states orders only pass through (CREATED, PRICED) or fail into, which hold few rows
 * compared with the table. Every list is bounded by LIMIT; the summary returns one row per state.
 */

/** The states an order can be stuck in: waiting for pricing or dispatch, or failed at either. */
export const STUCK_STATUSES = ['CREATED', 'PRICED', 'PRICING_FAILED', 'DISPATCH_FAILED'] as const satisfies readonly OrderStatus[];
export type StuckStatus = (typeof STUCK_STATUSES)[number];

/** Most orders one call lists or looks up. */
export const STUCK_LIST_MAX = 100_000;

export interface StuckOrdersQuery {
  /** The states to look at (at least one). */
  readonly statuses: readonly StuckStatus[];
  /** Only orders whose last change is older than this, in ms (0: every order in those states). */
  readonly olderThanMs: number;
}

export interface StuckStateSummary {
  readonly status: StuckStatus;
  /** Orders in the state past the cut-off. */
  readonly count: number;
  /** Age of the oldest of them (time since its last change), in ms; null when there is none. */
  readonly oldestAgeMs: number | null;
}

export interface StuckOrder {
  readonly id: string;
  readonly status: StuckStatus;
  readonly zoneId: string;
  /** Time since the order last changed, in ms. */
  readonly ageMs: number;
  /** Re-drives so far. */
  readonly attempts: number;
  /** When compensation will re-drive it (failed states only). */
  readonly nextAttemptAt: Date | null;
  /** Time until then, in ms; negative when it is overdue, null when there is none. */
  readonly nextAttemptInMs: number | null;
  readonly lastError: string | null;
  readonly updatedAt: Date;
}

/** Where one order of a chosen set is now. */
export interface OrderState {
  readonly id: string;
  readonly status: OrderStatus;
  readonly ageMs: number;
  readonly attempts: number;
}

const AGE_MS = 'TIMESTAMPDIFF(MICROSECOND, updated_at, CURRENT_TIMESTAMP(3)) DIV 1000';
const NEXT_ATTEMPT_IN_MS = 'TIMESTAMPDIFF(MICROSECOND, CURRENT_TIMESTAMP(3), next_attempt_at) DIV 1000';

function checkQuery(query: StuckOrdersQuery): void {
  if (query.statuses.length === 0) throw new RangeError('at least one state is needed');
  for (const status of query.statuses) {
    if (!(STUCK_STATUSES as readonly string[]).includes(status)) throw new RangeError(`not a state an order gets stuck in: ${status}`);
  }
  if (!Number.isInteger(query.olderThanMs) || query.olderThanMs < 0) throw new RangeError(`olderThanMs must be an integer >= 0, got ${query.olderThanMs}`);
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > STUCK_LIST_MAX) throw new RangeError(`limit must be an integer from 1 to ${STUCK_LIST_MAX}, got ${limit}`);
}

/** The orders of the query: in the states asked, last changed before the cut-off. */
function stuckWhere(db: Db, query: StuckOrdersQuery) {
  return db('orders')
    .whereIn('status', [...new Set(query.statuses)])
    .where('updated_at', '<', db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [query.olderThanMs * 1000]));
}

/** Per state asked (in the order asked, zeros included): how many orders are past the cut-off, and the oldest one's age. */
export async function summarizeStuckOrders(db: Db, query: StuckOrdersQuery): Promise<StuckStateSummary[]> {
  checkQuery(query);
  const rows = (await stuckWhere(db, query)
    .select('status')
    .count({ n: '*' })
    .select(db.raw(`MAX(${AGE_MS}) AS oldest_age_ms`))
    .groupBy('status')) as unknown as { status: string; n: number | string; oldest_age_ms: number | string | null }[];
  const byStatus = new Map(rows.map((row) => [row.status, row]));
  return [...new Set(query.statuses)].map((status) => {
    const row = byStatus.get(status);
    return {
      status,
      count: row ? Number(row.n) : 0,
      oldestAgeMs: row?.oldest_age_ms == null ? null : Number(row.oldest_age_ms),
    };
  });
}

/** Up to `limit` orders of the query, oldest (least recently changed) first. */
export async function listStuckOrders(db: Db, query: StuckOrdersQuery & { readonly limit: number }): Promise<StuckOrder[]> {
  checkQuery(query);
  checkLimit(query.limit);
  const rows = (await stuckWhere(db, query)
    .select('id', 'status', 'zone_id', 'attempts', 'next_attempt_at', 'last_error', 'updated_at')
    .select(db.raw(`${AGE_MS} AS age_ms`), db.raw(`${NEXT_ATTEMPT_IN_MS} AS next_attempt_in_ms`))
    .orderBy([{ column: 'updated_at' }, { column: 'id' }])
    .limit(query.limit)) as Record<string, unknown>[];
  return rows.map((row) => ({
    id: String(row.id),
    status: row.status as StuckStatus,
    zoneId: String(row.zone_id),
    ageMs: Number(row.age_ms),
    attempts: Number(row.attempts),
    nextAttemptAt: (row.next_attempt_at as Date | null) ?? null,
    nextAttemptInMs: row.next_attempt_in_ms == null ? null : Number(row.next_attempt_in_ms),
    lastError: (row.last_error as string | null) ?? null,
    updatedAt: row.updated_at as Date,
  }));
}

/** Where each of these orders is now (those that exist), by primary key, in pages of `pageSize`. */
export async function readOrderStates(db: Db, orderIds: readonly string[], pageSize = 1000): Promise<Map<string, OrderState>> {
  checkLimit(pageSize);
  const states = new Map<string, OrderState>();
  for (let start = 0; start < orderIds.length; start += pageSize) {
    const page = orderIds.slice(start, start + pageSize);
    const rows = (await db('orders')
      .select('id', 'status', 'attempts')
      .select(db.raw(`${AGE_MS} AS age_ms`))
      .whereIn('id', page)) as Record<string, unknown>[];
    for (const row of rows) {
      const id = String(row.id);
      states.set(id, { id, status: row.status as OrderStatus, ageMs: Number(row.age_ms), attempts: Number(row.attempts) });
    }
  }
  return states;
}
