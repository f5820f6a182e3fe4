import type { BulkJobOptions, Queue } from 'bullmq';
import { NOTIFICATION_JOB_OPTIONS } from '../notifications/retry-policy.ts';
import { withDeadline } from '../with-deadline.ts';
import { parsePayload } from './payload-schemas.ts';
import { notificationJobId, type JobPayloads, type NotificationKind } from './payloads.ts';
import { QUEUE_NAMES, assertQueue } from './queue-names.ts';

/**
 * Puts an order's notifications on the notifications queue in one round trip. The job id is
 * derived from (order, kind), so enqueueing one twice while its job exists is a no-op; a repeat
 * after the job finished runs again and finds the ledger row SENT, so it sends nothing.
 */
export async function enqueueNotifications(
  queue: Queue,
  orderId: string,
  kinds: readonly NotificationKind[],
  timeoutMs: number,
): Promise<void> {
  await enqueueNotificationBatch(
    queue,
    kinds.map((kind) => ({ orderId, kind })),
    timeoutMs,
  );
}

/**
 * The same for the notifications of many orders (a dispatch batch), in one round trip. Every
 * payload is validated first: a malformed one throws before anything is added.
 */
export async function enqueueNotificationBatch(
  queue: Queue,
  notifications: readonly JobPayloads['notify.send'][],
  timeoutMs: number,
): Promise<void> {
  assertQueue(queue, QUEUE_NAMES.notifications, 'notifications');
  const byJobId = new Map<string, { name: 'notify.send'; data: JobPayloads['notify.send']; opts: BulkJobOptions }>();
  for (const notification of notifications) {
    const data = parsePayload('notify.send', { orderId: notification.orderId, kind: notification.kind });
    const jobId = notificationJobId(data.orderId, data.kind);
    byJobId.set(jobId, { name: 'notify.send', data, opts: { ...NOTIFICATION_JOB_OPTIONS, jobId } });
  }
  if (byJobId.size === 0) return;
  await withDeadline(queue.addBulk([...byJobId.values()]), timeoutMs);
}
