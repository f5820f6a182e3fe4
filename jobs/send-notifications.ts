import { ProviderUnavailableError } from '../shared/errors/index.ts';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { countOutcomes, type StageMetrics } from '../shared/metrics/stage-metrics.ts';
import { composeNotification, loadNotificationContexts } from '../shared/notifications/compose-notification.ts';
import type { OwedNotification } from '../shared/notifications/kinds.ts';
import {
  countAttempts,
  ledgerKey,
  markRefusedMany,
  markSentMany,
  openLedgerBatch,
  recordFailures,
  type LedgerEntry,
} from '../shared/notifications/notification-ledger.ts';
import type { MessageOutcome, NotificationBatchSender } from '../shared/notifications/provider-client.ts';
import { orderTrail } from '../shared/orders/request-ids.ts';
import type { JobPayloads } from './payloads.ts';

export interface SendNotificationsDeps {
  readonly db: Db;
  /** The provider behind its timeout and circuit breaker (one per process). */
  readonly provider: NotificationBatchSender;
  /** This job's id: the ledger rows it has to create carry it. */
  readonly jobId: string;
  readonly logger: Logger;
  /** Aborted when the job is cancelled; the provider calls stop with it. */
  readonly signal?: AbortSignal;
  /** The notify stage's batch size and outcomes. */
  readonly metrics?: Pick<StageMetrics, 'stageBatchSize' | 'stageItems'>;
}

export interface SendOutcome {
  readonly sent: number;
  /** Found SENT already (a duplicate job, a retry after a crash that had marked them). */
  readonly alreadySent: number;
  /** Refused by the provider for good, or impossible to write (the order is gone): REFUSED in the ledger. */
  readonly refused: number;
  readonly ms: number;
}

/**
 * Sends a batch of notifications, each once. The batch's ledger rows (unique per order and kind)
 * are read in one step (created PENDING where missing); rows found SENT or REFUSED are skipped; the
 * calls about to be made are counted; the provider gets the messages in batch calls, each message
 * with its own idempotency key `<orderId>:<kind>`; the accepted ones are marked SENT in one
 * transaction, the refused ones REFUSED, the failed ones keep their reason.
 *
 * If some failed, the job fails and its retry acts only on the rows still PENDING. The one window
 * the ledger cannot close is a crash (or a lost answer) after the provider accepted a message and
 * before its row says SENT: the retry calls the provider again with the same key, the provider
 * drops the repeat and answers with the first message's id, so the person is notified once and
 * the row ends SENT with the id of the message they got. When the provider's breaker is open,
 * nothing left: the job throws ProviderUnavailableError and its worker puts it back to wait
 * without spending an attempt.
 */
export async function sendNotificationsJob(payload: JobPayloads['notify.batch'], deps: SendNotificationsDeps): Promise<SendOutcome> {
  const started = performance.now();
  const items = unique(payload.notifications);
  const entries = await openLedgerBatch(deps.db, items, deps.jobId);
  const rows = items.map((item) => entries.get(ledgerKey(item.orderId, item.kind))!);
  const pending = rows.filter((entry) => entry.status === 'PENDING');
  const alreadySent = rows.filter((entry) => entry.status === 'SENT').length;
  const contexts = await loadNotificationContexts(
    deps.db,
    pending.map((entry) => entry.orderId),
  );
  const orphans = pending.filter((entry) => !contexts.has(entry.orderId));
  await markRefusedMany(
    deps.db,
    orphans.map((entry) => ({ entryId: entry.id, message: `order ${entry.orderId} or its merchant does not exist` })),
  );
  const sendable = pending.filter((entry) => contexts.has(entry.orderId));
  await countAttempts(
    deps.db,
    sendable.map((entry) => entry.id),
  );
  const outcomes =
    sendable.length === 0
      ? []
      : await deps.provider.sendBatch(
          sendable.map((entry) => ({ orderId: entry.orderId, kind: entry.kind, ...composeNotification(entry.kind, contexts.get(entry.orderId)!) })),
          deps.signal ? { signal: deps.signal } : {},
        );
  const { sent, refused, failed, unavailable } = sortOut(sendable, outcomes);

  const marked = await markSentMany(deps.db, sent);
  await markRefusedMany(deps.db, refused);
  await recordFailures(deps.db, failed, { takeBackAttempt: false });
  await recordFailures(deps.db, unavailable, { takeBackAttempt: true });

  const outcome = { sent: marked.size, alreadySent, refused: orphans.length + refused.length, ms: Math.round(performance.now() - started) };
  const requestIds = new Map([...contexts.values()].map((context) => [context.orderId, context.requestId]));
  // The batch's one line, also when it fails (the failure's own line names the job, as this one does).
  deps.logger.info(
    { ...outcome, notifications: items.length, failed: failed.length, unavailable: unavailable.length, ...orderTrail(items.map((item) => item.orderId), requestIds) },
    `notification batch: ${outcome.sent} sent, ${outcome.alreadySent} already sent, ${outcome.refused} refused, ${failed.length} failed, ` +
      `${unavailable.length} waiting for the provider, of ${items.length} in ${outcome.ms} ms`,
  );
  if (deps.metrics) {
    deps.metrics.stageBatchSize.observe({ stage: 'notify' }, items.length);
    countOutcomes(deps.metrics, 'notify', {
      sent: outcome.sent,
      already_sent: alreadySent,
      refused: outcome.refused,
      failed: failed.length,
      unavailable: unavailable.length,
    });
  }
  if (failed.length > 0) {
    throw new Error(`${failed.length} of ${items.length} notifications failed (${failed[0]!.message}); the retry sends the ones still PENDING`);
  }
  if (unavailable.length > 0) throw new ProviderUnavailableError(deps.provider.retryAfterMs(), unavailable[0]!.message);
  return outcome;
}

function unique(items: readonly OwedNotification[]): OwedNotification[] {
  const seen = new Map<string, OwedNotification>();
  for (const item of items) seen.set(ledgerKey(item.orderId, item.kind), item);
  return [...seen.values()];
}

type Marked = { readonly entryId: string; readonly message: string };

function sortOut(
  entries: readonly LedgerEntry[],
  outcomes: readonly MessageOutcome[],
): { sent: { entryId: string; providerMessageId: string }[]; refused: Marked[]; failed: Marked[]; unavailable: Marked[] } {
  const sorted = { sent: [] as { entryId: string; providerMessageId: string }[], refused: [] as Marked[], failed: [] as Marked[], unavailable: [] as Marked[] };
  entries.forEach((entry, index) => {
    const outcome = outcomes[index] ?? { kind: 'failed', reason: 'no outcome from the provider client' };
    if (outcome.kind === 'sent') sorted.sent.push({ entryId: entry.id, providerMessageId: outcome.messageId });
    else sorted[outcome.kind].push({ entryId: entry.id, message: outcome.reason });
  });
  return sorted;
}
