import type { BulkJobOptions, KeepJobs, Queue } from 'bullmq';
import { InvalidJobPayloadError } from '../shared/errors/index.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import type { Redis } from '../shared/redis.ts';
import { withDeadline } from '../shared/with-deadline.ts';
import { JOB_TYPES } from './job-types.ts';
import { payloadProblem, type JobName, type JobPayloads } from './payloads.ts';

/** Where a job stands, from its hash alone: still to run (waiting, delayed, active), finished (completed or failed for good), or gone. */
export type JobLook = 'missing' | 'live' | 'finished';

export interface AddOptions {
  /** Run it this long from now, in ms. */
  readonly delayMs?: number;
}

/**
 * The one producer: every job Courier puts on a queue goes through here, routed, identified and
 * optioned by the table of job types (jobs/job-types.ts), its payload checked against its schema
 * first (a bad payload throws InvalidJobPayloadError before anything is added), each add bounded
 * in time. Adding the same work twice is a no-op while its job exists (the id rule).
 */
export class JobProducer {
  private readonly connection: Redis;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly removeOnComplete: KeepJobs | boolean | undefined;
  private readonly queues = new Map<QueueName, Queue>();

  /** removeOnComplete: the completed jobs its queues keep (keepCompleted(config); default DEFAULT_KEEP_COMPLETED). */
  constructor(connection: Redis, opts: { readonly prefix: string; readonly timeoutMs: number; readonly removeOnComplete?: KeepJobs | boolean }) {
    this.connection = connection;
    this.prefix = opts.prefix;
    this.timeoutMs = opts.timeoutMs;
    this.removeOnComplete = opts.removeOnComplete;
  }

  /** Adds one job; resolves with its id. */
  async add<N extends JobName>(name: N, payload: JobPayloads[N], opts: AddOptions = {}): Promise<string> {
    const [jobId] = await this.addMany(name, [payload], opts);
    return jobId!;
  }

  /** Adds jobs of one type in one round trip (payloads with the same id once); resolves with their ids. */
  async addMany<N extends JobName>(name: N, payloads: readonly JobPayloads[N][], opts: AddOptions = {}): Promise<string[]> {
    const jobs = new Map<string, { name: N; data: JobPayloads[N]; opts: BulkJobOptions }>();
    for (const payload of payloads) {
      const jobId = this.checked(name, payload);
      jobs.set(jobId, { name, data: payload, opts: this.optionsOf(name, jobId, opts) });
    }
    if (jobs.size > 0) await withDeadline(this.queue(JOB_TYPES[name].queue).addBulk([...jobs.values()]), this.timeoutMs);
    return [...jobs.keys()];
  }

  /**
   * Puts a lost batch back (the reconciler; the payload names the batch whose id its rows carry):
   * a finished job of that id is removed first, since an id only adds while no job holds it.
   */
  async putBack<N extends JobName>(name: N, payload: JobPayloads[N]): Promise<void> {
    const jobId = this.checked(name, payload);
    const queue = this.queue(JOB_TYPES[name].queue);
    const [look] = await this.lookUp(JOB_TYPES[name].queue, [jobId]);
    if (look === 'live') return;
    if (look === 'finished') await withDeadline(queue.remove(jobId), this.timeoutMs);
    await withDeadline(queue.add(name, payload, this.optionsOf(name, jobId, {})), this.timeoutMs);
  }

  /** Where each job stands, in one pipelined round trip (HMGET of each hash: no job data parsed). */
  async lookUp(queueName: QueueName, jobIds: readonly string[]): Promise<JobLook[]> {
    if (jobIds.length === 0) return [];
    const queue = this.queue(queueName);
    const pipeline = this.connection.pipeline();
    for (const jobId of jobIds) pipeline.hmget(queue.toKey(jobId), 'timestamp', 'finishedOn');
    const results = (await withDeadline(pipeline.exec(), this.timeoutMs * 5)) ?? [];
    return results.map(([error, fields]): JobLook => {
      if (error) throw error;
      const [timestamp, finishedOn] = fields as [string | null, string | null];
      if (timestamp === null) return 'missing';
      return finishedOn === null ? 'live' : 'finished';
    });
  }

  /** The queue itself (for the dashboard, counts, and workers' probes). */
  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = createQueue(name, {
        connection: this.connection,
        prefix: this.prefix,
        ...(this.removeOnComplete === undefined ? {} : { removeOnComplete: this.removeOnComplete }),
      });
      queue.on('error', () => undefined); // each add reports its own failure
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Closes the queues it opened (not the connection it was given). */
  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  private checked<N extends JobName>(name: N, payload: JobPayloads[N]): string {
    const problem = payloadProblem(name, payload);
    if (problem) throw new InvalidJobPayloadError(problem);
    return JOB_TYPES[name].jobId(payload as never);
  }

  private optionsOf(name: JobName, jobId: string, opts: AddOptions): BulkJobOptions {
    return { ...JOB_TYPES[name].options, jobId, ...(opts.delayMs ? { delay: opts.delayMs } : {}) };
  }
}
