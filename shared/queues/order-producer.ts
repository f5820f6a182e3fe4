import type { Queue } from 'bullmq';
import { isIdString } from '../ids.ts';
import { withDeadline } from '../with-deadline.ts';
import { QUEUE_NAMES, assertQueue } from './queue-names.ts';
import { dispatchJobId, orderJobId, priceJobId, type JobPayloads } from './payloads.ts';

/**
 * Puts committed orders on the orders queue in one round trip. The job id is derived from the
 * order id, so enqueueing an order twice (a retry, the reconciler) is a no-op.
 */
export async function enqueueNewOrders(queue: Queue, orderIds: readonly string[], timeoutMs: number): Promise<void> {
  assertQueue(queue, QUEUE_NAMES.orders, 'price jobs');
  for (const orderId of orderIds) {
    if (!isIdString(orderId)) throw new TypeError(`not an order id: ${JSON.stringify(orderId)}`);
  }
  const jobs = orderIds.map((orderId) => {
    const data: JobPayloads['order.price'] = { orderId };
    return { name: 'order.price' as const, data, opts: { jobId: orderJobId(orderId) } };
  });
  await withDeadline(queue.addBulk(jobs), timeoutMs);
}

/**
 * Puts re-driven (or orphaned) CREATED orders back on the orders queue, each under the job id of
 * its current try (priceJobId), in one round trip: a job that still exists is not doubled.
 */
export async function enqueuePriceJobs(
  queue: Queue,
  orders: readonly { readonly orderId: string; readonly attempts: number }[],
  timeoutMs: number,
): Promise<void> {
  assertQueue(queue, QUEUE_NAMES.orders, 'price jobs');
  if (orders.length === 0) return;
  const jobs = orders.map(({ orderId, attempts }) => {
    if (!isIdString(orderId)) throw new TypeError(`not an order id: ${JSON.stringify(orderId)}`);
    const data: JobPayloads['order.price'] = { orderId };
    return { name: 'order.price' as const, data, opts: { jobId: priceJobId(orderId, attempts) } };
  });
  await withDeadline(queue.addBulk(jobs), timeoutMs);
}

/** Books a dispatch run now for each zone (its PRICED orders are matched in it) on the dispatch queue, in one round trip. */
export async function enqueueDispatchRuns(dispatchQueue: Queue, zoneIds: readonly string[], timeoutMs: number, now = Date.now()): Promise<void> {
  assertQueue(dispatchQueue, QUEUE_NAMES.dispatch, 'dispatch runs');
  const zones = [...new Set(zoneIds)];
  if (zones.length === 0) return;
  const jobs = zones.map((zoneId) => {
    const data: JobPayloads['dispatch.zone'] = { zoneId };
    return { name: 'dispatch.zone' as const, data, opts: { jobId: dispatchJobId(zoneId, now) } };
  });
  await withDeadline(dispatchQueue.addBulk(jobs), timeoutMs);
}
