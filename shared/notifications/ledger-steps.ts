import type { Db } from '../db.ts';
import { MicroBatcher } from '../micro-batcher.ts';
import type { NotificationKind } from '../queues/payloads.ts';
import { loadNotificationContexts, type NotificationContext } from './compose-notification.ts';
import { ledgerKey, markSentMany, openLedgerEntries, recordAttempts, recordFailure, type LedgerEntry } from './notification-ledger.ts';

/** Where a notification stands before its provider call. */
export type Begun =
  | { readonly status: 'SENT' }
  /** PENDING; with its context the call about to be made is counted, without one (the order is gone) nothing is. */
  | { readonly status: 'PENDING'; readonly entry: LedgerEntry; readonly context: NotificationContext | undefined };

/** The ledger's steps around one provider call, as a notification job takes them. */
export interface NotificationLedgerSteps {
  /** Opens the ledger row (PENDING if missing), loads what the message is written from, counts the call about to be made. */
  begin(orderId: string, kind: NotificationKind): Promise<Begun>;
  /** PENDING -> SENT with the provider's message id; false when another run marked it first. */
  markSent(entryId: string, providerMessageId: string): Promise<boolean>;
  recordFailure(entryId: string, message: string, opts: { takeBackAttempt: boolean }): Promise<void>;
}

export interface LedgerBatchOptions {
  /** Notifications whose steps share a round trip. Default 64 (1: one at a time). */
  readonly maxSize?: number;
  /** How long the first step of a batch waits for others, in ms. Default 2 */
  readonly maxWaitMs?: number;
  /** Batches of each step at once; more steps wait and form bigger batches. Default 2 */
  readonly maxInFlight?: number;
}

/**
 * The ledger's steps for the notification jobs a process runs at once, taken together: the
 * begin of every job in flight is one INSERT, one SELECT of the rows, one of the orders and one
 * UPDATE of the attempts; their SENT marks are one transaction. The steps and their order are
 * those of one notification; only the round trips (and commits) are shared.
 */
export class BatchedNotificationLedger implements NotificationLedgerSteps {
  private readonly begins: MicroBatcher<{ orderId: string; kind: NotificationKind }, Begun>;
  private readonly marks: MicroBatcher<{ entryId: string; providerMessageId: string }, boolean>;

  private readonly db: Db;

  constructor(
    db: Db,
    opts: LedgerBatchOptions = {},
  ) {
    this.db = db;
    const batching = { maxSize: opts.maxSize ?? 64, maxWaitMs: opts.maxWaitMs ?? 2, maxInFlight: opts.maxInFlight ?? 2 };
    this.begins = new MicroBatcher(async (items) => (await beginMany(db, items)).map((value) => ({ ok: true, value })), batching);
    this.marks = new MicroBatcher(async (items) => {
      const marked = await markSentMany(db, items);
      // An entry listed twice (two runs met) is marked by the first of them only.
      const answered = new Set<string>();
      return items.map(({ entryId }) => {
        const mine = marked.has(entryId) && !answered.has(entryId);
        answered.add(entryId);
        return { ok: true, value: mine };
      });
    }, batching);
  }

  begin(orderId: string, kind: NotificationKind): Promise<Begun> {
    return this.begins.submit({ orderId, kind });
  }

  markSent(entryId: string, providerMessageId: string): Promise<boolean> {
    return this.marks.submit({ entryId, providerMessageId });
  }

  recordFailure(entryId: string, message: string, opts: { takeBackAttempt: boolean }): Promise<void> {
    return recordFailure(this.db, entryId, message, opts);
  }

  /** Resolves once no step waits or runs. */
  async idle(): Promise<void> {
    await Promise.all([this.begins.idle(), this.marks.idle()]);
  }
}

async function beginMany(db: Db, items: readonly { orderId: string; kind: NotificationKind }[]): Promise<Begun[]> {
  const entries = await openLedgerEntries(db, items);
  const pending = items.filter((item) => entries.get(ledgerKey(item.orderId, item.kind))!.status === 'PENDING');
  const contexts = await loadNotificationContexts(
    db,
    pending.map((item) => item.orderId),
  );
  const calls = new Map<string, number>();
  for (const item of pending) {
    if (!contexts.has(item.orderId)) continue;
    const { id } = entries.get(ledgerKey(item.orderId, item.kind))!;
    calls.set(id, (calls.get(id) ?? 0) + 1);
  }
  await recordAttempts(db, calls);
  return items.map((item) => {
    const entry = entries.get(ledgerKey(item.orderId, item.kind))!;
    if (entry.status === 'SENT') return { status: 'SENT' } as const;
    return { status: 'PENDING', entry, context: contexts.get(item.orderId) } as const;
  });
}
