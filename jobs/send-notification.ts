import { UnrecoverableError } from 'bullmq';
import { ProviderRejectedError, ProviderUnavailableError, coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { composeNotification } from '../shared/notifications/compose-notification.ts';
import type { NotificationLedgerSteps } from '../shared/notifications/ledger-steps.ts';
import type { NotificationSender, ProviderReceipt } from '../shared/notifications/provider-client.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface SendNotificationDeps {
  /** The ledger's steps (the notifier takes those of its jobs in flight together). */
  readonly ledger: NotificationLedgerSteps;
  /** The provider behind its timeout and circuit breaker (one per process). */
  readonly provider: NotificationSender;
  readonly logger: Logger;
  /** Aborted when the job is cancelled; the provider call stops with it. */
  readonly signal?: AbortSignal;
}

export type SendNotificationOutcome = 'sent' | 'already-sent';

/**
 * Sends one notification, once. The ledger row (unique per order and kind) is created PENDING if
 * missing; a run that finds it SENT does nothing (a duplicate job, a repeat enqueue). Otherwise the
 * provider is called with the idempotency key `<orderId>:<kind>` and the row is marked SENT with
 * the provider's message id.
 *
 * The one window the ledger cannot close is a crash (or a lost answer, a timeout) after the
 * provider accepted the message and before the row says SENT. The retry then calls the provider
 * again with the same key; the provider drops the repeat and answers with the first message's id,
 * so the person is notified once and the row ends SENT with the id of the message they got. Two
 * runs at once (a stalled job taken over) meet the same way: both calls carry one key, one
 * message goes out, and one of the runs marks the row.
 */
export async function sendNotificationJob(
  payload: JobPayloads['notify.send'],
  deps: SendNotificationDeps,
): Promise<SendNotificationOutcome> {
  const { orderId, kind } = payload;
  const begun = await deps.ledger.begin(orderId, kind);
  if (begun.status === 'SENT') return 'already-sent';
  const { entry, context } = begun;
  if (!context) {
    await deps.ledger.recordFailure(entry.id, `order ${orderId} or its merchant does not exist`, { takeBackAttempt: false });
    throw new UnrecoverableError(`order ${orderId} or its merchant does not exist`);
  }
  const message = { orderId, kind, ...composeNotification(kind, context) };

  // begin() counted this call: a crash during it is still counted.
  let receipt: ProviderReceipt;
  try {
    receipt = await deps.provider.send(message, deps.signal ? { signal: deps.signal } : {});
  } catch (thrown) {
    const error = coerceError(thrown);
    // The open breaker refused the call at once: it never reached the provider, so it is no attempt.
    const takeBackAttempt = error instanceof ProviderUnavailableError;
    await deps.ledger.recordFailure(entry.id, error.message, { takeBackAttempt }).catch((e: unknown) =>
      deps.logger.warn({ err: coerceError(e), orderId, kind }, 'could not record the notification failure'),
    );
    // The provider refused this very message: sending it again would be refused again.
    if (error instanceof ProviderRejectedError) throw new UnrecoverableError(error.message);
    throw error;
  }

  const marked = await deps.ledger.markSent(entry.id, receipt.messageId);
  deps.logger.info(
    { orderId, kind, messageId: receipt.messageId, replayed: receipt.replayed, attempt: entry.attempts + 1 },
    marked ? 'notification sent' : 'notification was marked sent by another run',
  );
  return marked ? 'sent' : 'already-sent';
}
