import type { Knex } from 'knex';
import type { Db } from '../db.ts';
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

/** The entry for (order, kind), created PENDING if missing; the unique key makes concurrent calls agree on one row. */
export async function openLedgerEntry(db: Db, orderId: string, kind: NotificationKind): Promise<LedgerEntry> {
  await db.raw('INSERT INTO notifications (order_id, kind, status, attempts) VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE id = id', [
    orderId,
    kind,
    'PENDING',
  ]);
  const row = await db('notifications')
    .select('id', 'status', 'attempts', 'provider_message_id')
    .where({ order_id: orderId, kind })
    .first();
  if (!row) throw new Error(`notification ledger row for order ${orderId} ${kind} vanished`);
  return {
    id: String(row.id),
    status: row.status as LedgerStatus,
    attempts: Number(row.attempts),
    providerMessageId: row.provider_message_id ?? null,
  };
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

/** Counts one call to the provider, before it is made, so a crash during the call is still counted. */
export async function recordAttempt(db: Db, entryId: string): Promise<void> {
  await db('notifications')
    .where({ id: entryId, status: 'PENDING' })
    .update({ attempts: db.raw('attempts + 1'), updated_at: db.raw('CURRENT_TIMESTAMP(3)') });
}

/** PENDING -> SENT with the provider's message id; false when another run marked it first. */
export async function markSent(db: Db, entryId: string, providerMessageId: string): Promise<boolean> {
  const updated = await db('notifications')
    .where({ id: entryId, status: 'PENDING' })
    .update({
      status: 'SENT',
      provider_message_id: providerMessageId.slice(0, 128),
      last_error: null,
      sent_at: db.raw('CURRENT_TIMESTAMP(3)'),
      updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
    });
  return updated === 1;
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
