import { DelayedError, UnrecoverableError, type Job, type Worker, type WorkerOptions } from 'bullmq';
import { JOB_TYPES, type JobType } from '../jobs/job-types.ts';
import { isJobName, parsePayload, type JobName } from '../jobs/payloads.ts';
import type { JobContext, ServicesOf } from '../jobs/services.ts';
import type { Config } from '../shared/config.ts';
import { coerceError, scrubError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { JobOutcome, QueueMetrics } from '../shared/metrics/queue-metrics.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import { startSupervisedWorker, type WorkerHold } from './supervised-worker.ts';

/** A job taken just as its worker was held is put back for this long (then it waits for the worker to resume). */
const HELD_JOB_DELAY_MS = 1000;

export interface QueueWorker {
  /** The current BullMQ worker (the watchdog may have replaced a stuck one). */
  readonly worker: Worker;
  /** Stops taking jobs, waits for the ones in flight and for what their final failures record. */
  close(): Promise<void>;
}

export interface QueueWorkerOptions<Q extends QueueName> {
  readonly queue: Q;
  readonly services: ServicesOf<Q>;
  readonly concurrency: number;
  readonly config: Pick<Config, 'redisUrl' | 'redisTimeoutMs' | 'queuePrefix' | 'jobLockMs' | 'workerWatchdogMs'>;
  readonly logger: Logger;
  readonly settings?: WorkerOptions['settings'];
  /**
   * While it holds (a degradation switch is off) the worker takes no jobs: it is paused, and a job
   * it had already fetched when the hold came is put back, delayed, without spending an attempt
   * and without running. The jobs in flight finish.
   */
  readonly hold?: WorkerHold;
  /** Where the queue's job counts, waits and run times go (the process that works the queue). */
  readonly metrics?: Pick<QueueMetrics, 'trackQueue' | 'jobWaitSeconds' | 'jobSeconds'>;
}

type AnyJobType = JobType<JobName, QueueName> & {
  run(payload: unknown, services: unknown, job: JobContext): Promise<unknown>;
  orderIds?(payload: unknown): readonly string[];
  onFinalFailure?(payload: unknown, error: Error, services: unknown, job: JobContext): Promise<void>;
};

/**
 * The worker of one queue, built from the table of job types: a job is looked up by name (a name
 * the table does not put on this queue fails at once), its payload checked against its schema (a
 * malformed one fails at once, never retried), then its handler runs with the services of the
 * queue's process. A handler's error that its type says to wait out (the provider's open breaker)
 * puts the job back without spending an attempt; after the last attempt, the type records what
 * the job could not do (onFinalFailure).
 */
export function startQueueWorker<Q extends QueueName>(opts: QueueWorkerOptions<Q>): QueueWorker {
  const { queue, services, logger, metrics } = opts;
  const typeOf = (name: string): AnyJobType => {
    const type = isJobName(name) ? (JOB_TYPES[name] as unknown as AnyJobType) : undefined;
    if (!type || type.queue !== queue) throw new UnrecoverableError(`unknown job name "${name}" on the ${queue} queue`);
    return type;
  };
  const contextOf = (job: Job, signal?: AbortSignal): JobContext => ({
    id: job.id ?? '',
    logger: logger.child({ job: job.id, name: job.name }),
    ...(signal ? { signal } : {}),
  });

  const processor = async (job: Job, token?: string, signal?: AbortSignal) => {
    if (opts.hold?.held() && token !== undefined) {
      // Fetched while the pause was coming (BullMQ's blocking fetch was already waiting).
      await job.moveToDelayed(Date.now() + HELD_JOB_DELAY_MS, token);
      logger.debug({ job: job.id, name: job.name }, 'job held: put back without running or spending an attempt');
      throw new DelayedError();
    }
    const started = performance.now();
    let outcome: JobOutcome = 'failed';
    // From its enqueue (less the delay it was given) to this run: a retried or postponed job's wait counts its earlier runs.
    metrics?.jobWaitSeconds.observe({ queue }, Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp - (job.opts.delay ?? 0)) / 1000);
    try {
      const type = typeOf(job.name);
      const payload = parsePayload(job.name as JobName, job.data);
      try {
        const result = await type.run(payload, services, contextOf(job, signal));
        outcome = 'completed';
        return result;
      } catch (thrown) {
        // What BullMQ keeps (failedReason, stacktrace, shown on the dashboard), what the failure is logged
        // with and what onFinalFailure stores in the orders: a database error's statement and values withheld.
        const error = scrubError(coerceError(thrown)) as Error;
        const waitMs = type.postponeFor?.(error, job.timestamp);
        if (waitMs === undefined || token === undefined) throw error;
        await job.moveToDelayed(Date.now() + waitMs, token);
        outcome = 'postponed';
        logger.debug({ job: job.id, name: job.name, waitMs, reason: error.message }, 'job waits without spending an attempt');
        throw new DelayedError();
      }
    } finally {
      metrics?.jobSeconds.observe({ queue, outcome }, (performance.now() - started) / 1000);
    }
  };

  /** The orders a failed job carried (a malformed payload names none). */
  const orderIdsOf = (job: Job): { orderIds?: readonly string[] } => {
    try {
      const type = typeOf(job.name);
      return type.orderIds ? { orderIds: type.orderIds(parsePayload(job.name as JobName, job.data)) } : {};
    } catch {
      return {};
    }
  };

  const recording = new Set<Promise<void>>();
  const recordFinalFailure = (job: Job, error: Error) => {
    let type: AnyJobType;
    let payload: unknown;
    try {
      type = typeOf(job.name);
      payload = parsePayload(job.name as JobName, job.data);
    } catch {
      return; // malformed or unknown: nothing it could have been recorded against
    }
    if (!type.onFinalFailure) return;
    const recorded: Promise<void> = type
      .onFinalFailure(payload, error, services, contextOf(job))
      .catch((e: unknown) => logger.error({ err: coerceError(e), job: job.id, name: job.name }, 'could not record the final failure of a job'))
      .finally(() => recording.delete(recorded));
    recording.add(recorded);
  };

  const supervised = startSupervisedWorker({
    queue,
    processor,
    concurrency: opts.concurrency,
    config: opts.config,
    logger,
    ...(opts.settings ? { settings: opts.settings } : {}),
    ...(opts.hold ? { hold: opts.hold } : {}),
    ...(metrics ? { trackQueue: metrics.trackQueue } : {}),
    onFailed: (job, error, final) => {
      const fields = { job: job.id, name: job.name, attemptsMade: job.attemptsMade, final, err: error, ...orderIdsOf(job) };
      if (final) logger.error(fields, `${job.name} job failed for good`);
      else logger.warn(fields, `${job.name} job attempt failed; retrying later`);
      if (final && error.name !== 'UnrecoverableError') recordFinalFailure(job, error);
    },
  });

  return {
    get worker() {
      return supervised.worker;
    },
    async close() {
      await supervised.close();
      while (recording.size > 0) await Promise.all(recording);
    },
  };
}
