import type { JobsOptions, Queue } from 'bullmq';
import { withDeadline } from '../with-deadline.ts';
import { parsePayload } from './payload-schemas.ts';
import { maintenanceJobId, warmUpJobId, type MaintenanceReason, type WarmUpReason } from './payloads.ts';
import { QUEUE_NAMES, assertQueue } from './queue-names.ts';

/**
 * Maintenance jobs keep their finished job for a day (at most 1,000 of them): a job id is only a
 * guard while its job exists, and a second scheduler whose tick arrives after the first one's job
 * already finished must still find it there and add nothing.
 */
export const MAINTENANCE_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 1000 },
};

/**
 * Puts a cache warm-up on the maintenance queue, one per reason and minute (`at`, UTC): adding the
 * same one again (another scheduler, another web process starting in that minute) is a no-op while
 * its job exists (BullMQ does not tell the caller which add it was). Resolves with the job id.
 */
export async function enqueueWarmUp(queue: Queue, reason: WarmUpReason, at: Date, timeoutMs: number): Promise<string> {
  assertQueue(queue, QUEUE_NAMES.maintenance, 'maintenance jobs');
  const data = parsePayload('cache.warm-up', { reason });
  const jobId = warmUpJobId(reason, at);
  await withDeadline(queue.add('cache.warm-up', data, { ...MAINTENANCE_JOB_OPTIONS, jobId }), timeoutMs);
  return jobId;
}

/**
 * Puts a compensation or reconciliation run on the maintenance queue, one per reason and second of
 * `at` (the tick's slot): the same tick from another scheduler is a no-op while its job exists.
 */
export async function enqueueOrderMaintenance(
  queue: Queue,
  job: 'compensate' | 'reconcile',
  reason: MaintenanceReason,
  at: Date,
  timeoutMs: number,
): Promise<string> {
  assertQueue(queue, QUEUE_NAMES.maintenance, 'maintenance jobs');
  const name = job === 'compensate' ? ('orders.compensate' as const) : ('orders.reconcile' as const);
  const data = parsePayload(name, { reason });
  const jobId = maintenanceJobId(job, reason, at);
  await withDeadline(queue.add(name, data, { ...MAINTENANCE_JOB_OPTIONS, jobId }), timeoutMs);
  return jobId;
}
