import { Queue, type ConnectionOptions, type DefaultJobOptions, type KeepJobs } from 'bullmq';
import type { QueueName } from './queue-names.ts';

/**
 * How many completed jobs a queue keeps, and for how long (KEEP_COMPLETED_JOBS,
 * KEEP_COMPLETED_SECONDS): long enough for the dashboard to show recent work and for
 * `orders:show` to say a batch completed, bounded both ways so Redis stays bounded at any rate.
 * MySQL holds each order's outcome; a kept job only says what its batch carried and did.
 */
export const DEFAULT_KEEP_COMPLETED: KeepJobs = { count: 200, age: 3600 };

/** The retention settings as BullMQ's `removeOnComplete`: a count of 0 removes a job as it completes. */
export function keepCompleted(settings: { readonly keepCompletedJobs: number; readonly keepCompletedSeconds: number }): KeepJobs | true {
  return settings.keepCompletedJobs === 0 ? true : { count: settings.keepCompletedJobs, age: settings.keepCompletedSeconds };
}

/**
 * Options of a batch job (orders.price, dispatch.zone) beyond the queue's defaults. They say
 * nothing of completed jobs: the queue's `removeOnComplete` (from the settings above) applies.
 * Failed ones are kept a week or up to 10,000 for inspection.
 */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 500, jitter: 0.5 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
} as const satisfies DefaultJobOptions;

/**
 * Every queue's defaults: the batch job options, completed jobs kept as configured (default
 * DEFAULT_KEEP_COMPLETED), and the events stream capped.
 */
export function createQueue(
  name: QueueName,
  opts: { connection: ConnectionOptions; prefix: string; removeOnComplete?: KeepJobs | boolean },
): Queue {
  const defaultJobOptions: DefaultJobOptions = { ...DEFAULT_JOB_OPTIONS, removeOnComplete: opts.removeOnComplete ?? DEFAULT_KEEP_COMPLETED };
  return new Queue(name, {
    connection: opts.connection,
    prefix: opts.prefix,
    defaultJobOptions,
    streams: { events: { maxLen: 10_000 } },
  });
}
