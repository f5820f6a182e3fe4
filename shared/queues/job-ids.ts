import { createHash } from 'node:crypto';
import type { OwedNotification } from '../notifications/kinds.ts';

/**
 * The job id rules, one per job type, as pure functions of what a job carries: adding the same
 * work twice (a retried enqueue, the reconciler) is a no-op while its job exists. The table of job
 * types (jobs/job-types.ts) names each rule; the writers that store a job id with their rows (the
 * intake, the write routine's ledger rows) call the same function before they commit.
 *
 * BullMQ refuses custom job ids with a single ':' (it keeps them for its repeat keys), so the
 * architecture's `order:<id>` style is spelled with dashes.
 */

/** A batch's own name (letters, digits, '-' and '_'), when its producer gives it one. */
export const BATCH_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * A price batch: `price-<batch>` when its producer named it (an intake slot: the orders one web
 * process committed in a few ms, which every one of their rows names before it is written), else
 * its first order, its size and its attempt (0 from the intake, n after the n-th re-drive of its
 * orders; an order is CREATED at one attempt once, so this names one batch).
 */
export function priceJobId(batch: { readonly orderIds: readonly string[]; readonly attempt: number; readonly batch?: string | undefined }): string {
  if (batch.batch !== undefined) return `price-${batch.batch}`;
  return priceBatchJobId(batch.orderIds, batch.attempt);
}

export function priceBatchJobId(orderIds: readonly string[], attempt: number): string {
  if (orderIds.length === 0) throw new RangeError('a price batch has at least one order');
  return `price-${orderIds[0]}-${orderIds.length}-a${attempt}`;
}

/** The batch name a job id of this family carries (what a reconciler puts back under the same id). */
export function batchNameOf(jobId: string, family: 'price' | 'notify'): string {
  const prefix = `${family}-`;
  if (!jobId.startsWith(prefix) || !BATCH_NAME.test(jobId.slice(prefix.length))) throw new RangeError(`not a ${family} batch job id: "${jobId}"`);
  return jobId.slice(prefix.length);
}

/**
 * One dispatch run per zone per window: every priced order of the window joins the same job. A run
 * booked "at once" (its zone had more orders than one run takes) has the exact millisecond instead.
 */
export function dispatchJobId(zoneId: string, windowStartMs: number): string {
  return `dispatch-${zoneId}-${windowStartMs}`;
}

/**
 * A notification batch: its first order, its size and a digest of what it carries (a dispatch
 * batch and a later cancel may start at the same order with as many notifications).
 */
export function notificationBatchJobId(notifications: readonly OwedNotification[], batch?: string): string {
  if (batch !== undefined) return `notify-${batch}`;
  if (notifications.length === 0) throw new RangeError('a notification batch has at least one notification');
  const digest = createHash('sha1');
  for (const { orderId, kind } of notifications) digest.update(`${orderId}:${kind};`);
  return `notify-${notifications[0]!.orderId}-${notifications.length}-${digest.digest('hex').slice(0, 10)}`;
}

/** One warm-up per reason and minute (UTC): every scheduler firing the tick, or web process starting in that minute, adds the same job. */
export function warmUpJobId(reason: string, at: Date): string {
  return `${reason}-warmup-${at.toISOString().slice(0, 16).replace(/[-T:]/g, '')}`;
}

/** The maintenance runs of the scheduler's ticks: one per job and second (UTC) of the tick, whichever scheduler adds it. */
export function maintenanceJobId(job: 'compensate' | 'reconcile', reason: string, at: Date): string {
  return `${reason}-${job}-${at.toISOString().slice(0, 19).replace(/[-T:]/g, '')}`;
}

/** Where a dispatch run of a zone falls: the window that is open now (it runs when it closes), or at once. */
export function dispatchWindow(nowMs: number, windowMs: number, atOnce: boolean): { readonly windowStartMs: number; readonly delayMs: number } {
  if (atOnce) return { windowStartMs: nowMs, delayMs: 0 };
  const windowStartMs = nowMs - (nowMs % windowMs);
  return { windowStartMs, delayMs: windowStartMs + windowMs - nowMs };
}
