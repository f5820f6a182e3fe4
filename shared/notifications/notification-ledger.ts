import type { Knex } from 'knex';
import { caseById, retryingDeadlocks, transactionRetryingDeadlocks, type Db } from '../db.ts';
import { compareIds } from '../ids.ts';
import type { NotificationKind } from '../queues/payloads.ts';

/**
 * The notifications table: one row per (order, kind), the record that a notification was sent.
 * PENDING until the provider accepted the message, then SENT; a row never goes back.
 */
export type LedgerStatus = 'PENDING' | 'SENT';

export interface LedgerEntry {
  readonly id: string;
  readonly status: LedgerStatus;
  readonly attempts: number;
  readonly providerMessageId: string | null;
}

/**
 * The entries for these (order, kind) pairs, each created PENDING if missing, in two statements
 * for all of them; the unique key makes concurrent callers agree on one row each. Keyed by
 * ledgerKey(orderId, kind).
 */
export async function openLedgerEntries(
  db: Db,
  pairs: readonly { readonly orderId: string; readonly kind: NotificationKind }[],
): Promise<Map<string, LedgerEntry>> {
  const entries = new Map<string, LedgerEntry>();
  if (pairs.length === 0) return entries;
  // In key order, as every writer of these rows takes them: two notifiers' batches then queue
  // rather than deadlock (and a deadlock all the same is retried).
  const sorted = [...pairs].sort((a, b) => compareIds(a.orderId, b.orderId) || a.kind.localeCompare(b.kind));
  const values = sorted.map(() => "(?, ?, 'PENDING', 0)").join(', ');
  const params = sorted.flatMap((pair) => [pair.orderId, pair.kind]);
  await retryingDeadlocks(() =>
    db.raw(`INSERT INTO notifications (order_id, kind, status, attempts) VALUES ${values} ON DUPLICATE KEY UPDATE id = id`, params),
  );
  const rows = (await db('notifications')
    .select('id', 'order_id', 'kind', 'status', 'attempts', 'provider_message_id')
    // Not a row constructor `(order_id, kind) IN (('<id>', '<kind>'), ...)`: with the BIGINT ids
    // bound as strings MariaDB 10.11 answers it wrongly (two tuples asked, one row back).
    .whereIn('order_id', [...new Set(pairs.map((pair) => pair.orderId))])
    .whereIn('kind', [...new Set(pairs.map((pair) => pair.kind))])) as {
    id: string | number;
    order_id: string | number;
    kind: NotificationKind;
    status: LedgerStatus;
    attempts: number;
    provider_message_id: string | null;
  }[];
  for (const row of rows) {
    entries.set(ledgerKey(String(row.order_id), row.kind), {
      id: String(row.id),
      status: row.status,
      attempts: Number(row.attempts),
      providerMessageId: row.provider_message_id ?? null,
    });
  }
  for (const pair of pairs) {
    if (!entries.has(ledgerKey(pair.orderId, pair.kind))) throw new Error(`notification ledger row for order ${pair.orderId} ${pair.kind} vanished`);
  }
  return entries;
}

export function ledgerKey(orderId: string, kind: NotificationKind): string {
  return `${orderId}:${kind}`;
}

/**
 * PENDING rows for notifications an order change owes, written in the change's own transaction:
 * the row is the outbox, so a notification whose job Redis lost is found and enqueued again by the
 * reconciler. An existing row (a repeat) is left as it is.
 */
export async function openLedgerEntriesIn(
  trx: Knex.Transaction,
  entries: readonly { readonly orderId: string; readonly kind: NotificationKind }[],
): Promise<void> {
  if (entries.length === 0) return;
  const values = entries.map(() => "(?, ?, 'PENDING', 0)").join(', ');
  await trx.raw(`INSERT INTO notifications (order_id, kind, status, attempts) VALUES ${values} ON DUPLICATE KEY UPDATE id = id`, [
    ...entries.flatMap((entry) => [entry.orderId, entry.kind]),
  ]);
}

/**
 * Counts calls to the provider, before they are made, so a crash during a call is still counted:
 * `calls` maps a PENDING entry's id to the calls about to be made (one, unless two runs meet).
 */
export async function recordAttempts(db: Db, calls: ReadonlyMap<string, number>): Promise<void> {
  if (calls.size === 0) return;
  const ids = [...calls.keys()];
  const increment = db.raw('attempts + ?', [caseById(db, ids.map((id) => [id, calls.get(id)!] as const))]);
  await db('notifications').whereIn('id', ids).where({ status: 'PENDING' }).update({ attempts: increment, updated_at: db.raw('CURRENT_TIMESTAMP(3)') });
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
    const messageIdCase = caseById(
      trx,
      pending.map((id) => [id, messageIds.get(id)!.slice(0, 128)] as const),
    );
    await trx('notifications').whereIn('id', pending).update({
      status: 'SENT',
      provider_message_id: messageIdCase,
      last_error: null,
      sent_at: trx.raw('CURRENT_TIMESTAMP(3)'),
      updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
    });
    return new Set(pending);
  });
}

/**
 * Keeps the reason the last try failed. takeBackAttempt undoes the recordAttempt of a call the
 * breaker refused at once: attempts counts calls that may have reached the provider.
 */
export async function recordFailure(db: Db, entryId: string, message: string, opts: { takeBackAttempt: boolean }): Promise<void> {
  await db('notifications')
    .where({ id: entryId, status: 'PENDING' })
    .update({
      last_error: message.slice(0, 1000),
      updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
      ...(opts.takeBackAttempt ? { attempts: db.raw('GREATEST(attempts, 1) - 1') } : {}),
    });
}
