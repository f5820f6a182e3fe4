import { Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Config } from '../shared/config.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { CountableQueue } from '../shared/metrics/queue-metrics.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import { createProducerRedis, createWorkerRedis } from '../shared/redis.ts';
import { withDeadline } from '../shared/with-deadline.ts';
import { startWatchdog } from './worker-watchdog.ts';

export interface SupervisedWorker {
  /** The current BullMQ worker (the watchdog may have replaced a stuck one). */
  readonly worker: Worker;
  /** Stops the watchdog, then closes the worker (waiting for the jobs in flight) and its connections. */
  close(): Promise<void>;
}

export interface SupervisedWorkerOptions {
  readonly queue: QueueName;
  readonly processor: (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;
  readonly concurrency: number;
  readonly config: Pick<Config, 'redisUrl' | 'redisTimeoutMs' | 'queuePrefix' | 'jobLockMs' | 'workerWatchdogMs'>;
  readonly logger: Logger;
  /** Told of every failed attempt (final or not). */
  readonly onFailed?: (job: Job, error: Error, final: boolean) => void;
  readonly settings?: WorkerOptions['settings'];
  /** While it holds, the worker is paused (it takes no job); a worker made meanwhile starts paused. */
  readonly hold?: WorkerHold;
  /** Has the queue's jobs counted at each metrics scrape (over the watchdog's connection); returns the untrack. */
  readonly trackQueue?: (name: string, queue: CountableQueue) => () => void;
}

/** Something that may hold a worker (a degradation switch), and says when to look again. */
export interface WorkerHold {
  held(): boolean;
  /** Calls the listener whenever held() may have changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

/**
 * A BullMQ worker as every Courier process runs one: its own blocking connection, locks that let
 * another worker take over a dead one's jobs after jobLockMs, errors logged, and a watchdog that
 * replaces it if it sits idle while jobs wait (the state reported after Redis comes back).
 */
export function startSupervisedWorker(opts: SupervisedWorkerOptions): SupervisedWorker {
  const { config, logger } = opts;
  // Jobs each worker is running now, so the watchdog can tell a full worker from a stuck one.
  const running = new WeakMap<Worker, number>();
  const makeWorker = () => {
    const connection = createWorkerRedis(config);
    connection.on('error', (error) => logger.debug({ err: coerceError(error) }, 'worker redis error'));
    let inFlight = 0;
    const counted = async (job: Job, token?: string, signal?: AbortSignal) => {
      running.set(created, ++inFlight);
      try {
        return await opts.processor(job, token, signal);
      } finally {
        running.set(created, --inFlight);
      }
    };
    const heldNow = opts.hold?.held() ?? false;
    const created: Worker = new Worker(opts.queue, counted, {
      // Held from the start: not run until resumed (no fetch, no stalled-job timer meanwhile).
      autorun: !heldNow,
      connection,
      prefix: config.queuePrefix,
      concurrency: opts.concurrency,
      // A job whose worker died (SIGKILL, a lost machine) is taken over once its lock runs out.
      // Every worker of a queue must share this: BullMQ checks for stalled jobs at most once per
      // stalledInterval of whichever worker checked last.
      lockDuration: config.jobLockMs,
      stalledInterval: config.jobLockMs,
      ...(opts.settings ? { settings: opts.settings } : {}),
    });
    created.on('error', (error) => logger.warn({ err: coerceError(error), queue: opts.queue }, 'worker error'));
    created.on('failed', (job, error) => {
      if (!job) return;
      const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      opts.onFailed?.(job, error, final);
    });
    created.on('closed', () => connection.disconnect());
    // Paused, not merely idle: the watchdog leaves a paused worker be.
    if (heldNow) void created.pause(true);
    return created;
  };
  /** Pauses or resumes the current worker as the hold says; the jobs in flight finish either way. */
  const applyHold = () => {
    if (!opts.hold || worker.closing) return;
    if (opts.hold.held()) {
      if (!worker.isPaused()) void worker.pause(true);
    } else if (worker.isPaused()) {
      void worker.resume();
    }
  };

  // The watchdog asks the queue over a connection of its own, not the worker's.
  const probeRedis = createProducerRedis(config);
  probeRedis.on('error', () => undefined);
  const probe = createQueue(opts.queue, { connection: probeRedis, prefix: config.queuePrefix });
  probe.on('error', () => undefined);
  const untrack = opts.trackQueue?.(opts.queue, probe);

  let worker = makeWorker();
  const unhold = opts.hold?.onChange(applyHold);
  const watchdog = startWatchdog({
    queue: probe,
    current: () => worker,
    replace: async () => {
      const stuck = worker;
      worker = makeWorker();
      // A stuck worker may not close cleanly; its locks lapse and its jobs are taken over.
      await withDeadline(stuck.close(true), config.jobLockMs).catch(() => undefined);
    },
    stuckAfterMs: config.workerWatchdogMs,
    busy: () => (running.get(worker) ?? 0) >= opts.concurrency,
    logger,
  });

  return {
    get worker() {
      return worker;
    },
    async close() {
      unhold?.();
      untrack?.();
      watchdog.stop();
      await worker.close();
      await probe.close();
      probeRedis.disconnect();
    },
  };
}
