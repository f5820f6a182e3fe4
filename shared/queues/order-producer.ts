import type { Queue } from 'bullmq';
import { isIdString } from '../ids.ts';
import { withDeadline } from '../with-deadline.ts';
import { orderJobId, type JobPayloads } from './payloads.ts';

/**
 * Puts committed orders on the orders queue in one round trip. The job id is derived from the
 * order id, so enqueueing an order twice (a retry, the reconciler) is a no-op.
 */
export async function enqueueNewOrders(queue: Queue, orderIds: readonly string[], timeoutMs: number): Promise<void> {
  for (const orderId of orderIds) {
    if (!isIdString(orderId)) throw new TypeError(`not an order id: ${JSON.stringify(orderId)}`);
  }
  const jobs = orderIds.map((orderId) => {
    const data: JobPayloads['order.price'] = { orderId };
    return { name: 'order.price' as const, data, opts: { jobId: orderJobId(orderId) } };
  });
  await withDeadline(queue.addBulk(jobs), timeoutMs);
}
