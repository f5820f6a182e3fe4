import type { JobsOptions } from 'bullmq';
import { ProviderUnavailableError } from '../errors/index.ts';
import { DEFAULT_JOB_OPTIONS } from '../queues/create-queue.ts';

/** The backoff type notification jobs carry; the notifier's worker knows how to compute it. */
export const NOTIFICATION_BACKOFF_TYPE = 'notification';

/** First retry after about this long; each further retry waits twice as long. */
const BASE_DELAY_MS = 1000;
/** No retry waits longer than this. */
const MAX_DELAY_MS = 5 * 60_000;

/**
 * Job options of a notification: 10 attempts spread over about 8 minutes (1 s, 2 s, 4 s, ... with
 * jitter), enough to ride out a provider outage of a few minutes; after that a notification is
 * stale and its job is kept in the failed set (the ledger row stays PENDING, with last_error).
 * Completed ones are kept as the queue says (KEEP_COMPLETED_JOBS, KEEP_COMPLETED_SECONDS).
 */
export const NOTIFICATION_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: NOTIFICATION_BACKOFF_TYPE, delay: BASE_DELAY_MS },
  removeOnFail: DEFAULT_JOB_OPTIONS.removeOnFail,
} as const satisfies JobsOptions;

/**
 * While the provider's breaker is open, a notification waits for it without spending attempts,
 * for at most this long after it was enqueued; then waiting spends attempts like any failure.
 */
export const MAX_WAIT_FOR_PROVIDER_MS = 15 * 60_000;

/** How long a job that met the open breaker waits: until a call may go through, plus jitter so the waiting jobs do not all wake at once. */
export function waitForProviderMs(error: ProviderUnavailableError): number {
  return Math.round(Math.max(100, error.retryAfterMs) * (1 + 0.2 * Math.random()));
}

/**
 * BullMQ backoffStrategy of the notifier's worker: exponential with jitter, and never sooner than
 * the provider's circuit breaker will let a call through again, so jobs waiting on an open breaker
 * spend one attempt per breaker period instead of burning their attempts while it is open.
 */
export function notificationBackoff(attemptsMade: number, _type?: string, error?: Error): number {
  const exponential = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attemptsMade - 1));
  const jittered = exponential * (0.5 + 0.5 * Math.random());
  const notBefore = error instanceof ProviderUnavailableError ? waitForProviderMs(error) : 0;
  return Math.round(Math.max(jittered, notBefore));
}
