import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { QueueName } from './queue-names.ts';

/**
 * Redis memory stays bounded: completed jobs are dropped at once (MySQL holds the outcome),
 * failed ones are kept a week or up to 10,000 for inspection, and the events stream is capped.
 */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 500, jitter: 0.5 },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

export function createQueue(name: QueueName, opts: { connection: ConnectionOptions; prefix: string }): Queue {
  return new Queue(name, {
    connection: opts.connection,
    prefix: opts.prefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
    streams: { events: { maxLen: 10_000 } },
  });
}
