import { caseById, retryingDeadlocks, transactionRetryingDeadlocks, type Db } from '../db.ts';
import { compareIds } from '../ids.ts';
import type { NotificationKind, OwedNotification } from './kinds.ts';

/**
 * The notifications table: one row per (order, kind), the record of a notification. PENDING until
 * the provider accepted the message, then SENT; REFUSED when the provider refused it for good (or
 * it cannot be written: its order is gone). A row never goes back.
 */
export type LedgerStatus = 'PENDING' | 'SENT' | 'REFUSED';

export interface LedgerEntry {
  readonly id: string;
  readonly orderId: string;
  readonly kind: NotificationKind;
  readonly status: LedgerStatus;
  readonly attempts: number;
}

export function ledgerKey(orderId: string, kind: NotificationKind): string {
  return `${orderId}:${kind}`;
}

/**
 * The ledger rows of a batch, keyed by ledgerKey: read in one SELECT, and created PENDING (carrying
 * `jobId`) only where missing (a producer outside Courier, a pre-ledger job), in one INSERT; the
 * unique key makes concurrent callers agree on one row each.
 */
export async function openLedgerBatch(db: Db, items: readonly OwedNotification[], jobId: string): Promise<Map<string, LedgerEntry>> {
  const entries = await readEntries(db, items);
  const missing = items.filter((item) => !entries.has(ledgerKey(item.orderId, item.kind)));
  if (missing.length === 0) return entries;
  // In key order, as every writer of these rows takes them: two batches then queue rather than
  // deadlock (and a deadlock all the same is retried).
  const sorted = [...missing].sort((a, b) => compareIds(a.orderId, b.orderId) || a.kind.localeCompare(b.kind));
  await retryingDeadlocks(() =>
    db.raw(
      `INSERT INTO notifications (order_id, kind, status, attempts, job_id) VALUES ${sorted.map(() => "(?, ?, 'PENDING', 0, ?)").join(', ')} ` +
        'ON DUPLICATE KEY UPDATE id = id',
      sorted.flatMap((item) => [item.orderId, item.kind, jobId]),
    ),
  );
  for (const [key, entry] of await readEntries(db, missing)) entries.set(key, entry);
  for (const item of missing) {
    if (!entries.has(ledgerKey(item.orderId, item.kind))) throw new Error(`notification ledger row for order ${item.orderId} ${item.kind} vanished`);
  }
  return entries;
}

async function readEntries(db: Db, items: readonly OwedNotification[]): Promise<Map<string, LedgerEntry>> {
  const wanted = new Set(items.map((item) => ledgerKey(item.orderId, item.kind)));
  // Not a row constructor `(order_id, kind) IN (('<id>', '<kind>'), ...)`: with the BIGINT ids
  // bound as strings MariaDB 10.11 answers it wrongly (two tuples asked, one row back).
  const rows = (await db('notifications')
    .select('id', 'order_id', 'kind', 'status', 'attempts')
    .whereIn('order_id', [...new Set(items.map((item) => item.orderId))])
    .whereIn('kind', [...new Set(items.map((item) => item.kind))])) as {
    id: string | number;
    order_id: string | number;
    kind: NotificationKind;
    status: LedgerStatus;
    attempts: number;
  }[];
  const entries = new Map<string, LedgerEntry>();
  for (const row of rows) {
    const key = ledgerKey(String(row.order_id), row.kind);
    if (!wanted.has(key)) continue;
    entries.set(key, { id: String(row.id), orderId: String(row.order_id), kind: row.kind, status: row.status, attempts: Number(row.attempts) });
  }
  return entries;
}

/** Counts the calls about to be made, before they are made, so a crash during a call is still counted. */
export async function countAttempts(db: Db, entryIds: readonly string[]): Promise<void> {
  if (entryIds.length === 0) return;
  // In key order, retried when InnoDB picks it as a deadlock victim against another batch's SENT marks.
  await retryingDeadlocks(() =>
    db('notifications')
      .whereIn('id', entryIds)
      .where({ status: 'PENDING' })
      .orderBy('id')
      .update({ attempts: db.raw('attempts + 1'), updated_at: db.raw('CURRENT_TIMESTAMP(3)') }),
  );
}

/**
 * PENDING -> SENT with the provider's message ids, in one transaction; answers the ids this call
 * marked (an entry another run marked first, or listed twice, is marked once).
 */
export async function markSentMany(db: Db, sent: readonly { readonly entryId: string; readonly providerMessageId: string }[]): Promise<Set<string>> {
  const messageIds = new Map<string, string>();
  for (const { entryId, providerMessageId } of sent) if (!messageIds.has(entryId)) messageIds.set(entryId, providerMessageId);
  if (messageIds.size === 0) return new Set();
  return transactionRetryingDeadlocks(db, async (trx) => {
    const pending = ((await trx('notifications')
      .select('id')
      .whereIn('id', [...messageIds.keys()])
      .where({ status: 'PENDING' })
      .orderBy('id')
      .forUpdate()) as { id: string | number }[]).map((row) => String(row.id));
    if (pending.length === 0) return new Set<string>();
    await trx('notifications')
      .whereIn('id', pending)
      .update({
        status: 'SENT',
        provider_message_id: caseById(
          trx,
          pending.map((id) => [id, messageIds.get(id)!.slice(0, 128)] as const),
        ),
        last_error: null,
        sent_at: trx.raw('CURRENT_TIMESTAMP(3)'),
        updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
      });
    return new Set(pending);
  });
}

/**
 * Keeps why each call failed, in one UPDATE. takeBackAttempt undoes countAttempts for calls that
 * never left (the breaker was open): attempts counts calls that may have reached the provider.
 */
export async function recordFailures(
  db: Db,
  failures: readonly { readonly entryId: string; readonly message: string }[],
  opts: { readonly takeBackAttempt: boolean },
): Promise<void> {
  if (failures.length === 0) return;
  await db('notifications')
    .whereIn(
      'id',
      failures.map((failure) => failure.entryId),
    )
    .where({ status: 'PENDING' })
    .update({
      last_error: caseById(
        db,
        failures.map((failure) => [failure.entryId, failure.message.slice(0, 1000)] as const),
      ),
      updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
      ...(opts.takeBackAttempt ? { attempts: db.raw('GREATEST(attempts, 1) - 1') } : {}),
    });
}

/** PENDING -> REFUSED: the provider refused these messages (or they cannot be written); they are never sent. */
export async function markRefusedMany(db: Db, refused: readonly { readonly entryId: string; readonly message: string }[]): Promise<void> {
  if (refused.length === 0) return;
  await db('notifications')
    .whereIn(
      'id',
      refused.map((entry) => entry.entryId),
    )
    .where({ status: 'PENDING' })
    .update({
      status: 'REFUSED',
      last_error: caseById(
        db,
        refused.map((entry) => [entry.entryId, entry.message.slice(0, 1000)] as const),
      ),
      updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
    });
}
