import { Gauge, Histogram, type Registry } from 'prom-client';
import { withDeadline } from '../with-deadline.ts';
import { SECONDS_BUCKETS } from './registry.ts';

const STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** What the gauge asks of a queue at scrape time (a BullMQ Queue). */
export interface CountableQueue {
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
}

/** How a job's run ended: completed, failed (an attempt spent), or postponed (put back without spending one). */
export type JobOutcome = 'completed' | 'failed' | 'postponed';

/**
 * The BullMQ queues a process works: their jobs by state, read at scrape time in the process that
 * works the queue (one getJobCounts per queue per scrape, bounded by `timeoutMs`: a Redis that does
 * not answer leaves that queue's series out of the scrape rather than hang /metrics), how long
 * jobs waited to start and how long they ran, by outcome (observed once per job, a batch).
 */
export function createQueueMetrics(registry: Registry, opts: { timeoutMs: number; onCountFailed?: (queue: string, error: unknown) => void }) {
  const registers = [registry];
  const tracked = new Map<string, CountableQueue>();
  return {
    /** Counts this queue's jobs at each scrape, until the returned function is called. */
    trackQueue(name: string, queue: CountableQueue): () => void {
      tracked.set(name, queue);
      return () => {
        if (tracked.get(name) === queue) tracked.delete(name);
      };
    },
    queueJobs: new Gauge({
      name: 'courier_queue_jobs',
      help: 'Jobs in each queue this process works, by state (waiting, active, delayed, failed), as Redis counted them at the scrape',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          [...tracked].map(async ([queue, source]) => {
            try {
              const counts = await withDeadline(source.getJobCounts(...STATES), opts.timeoutMs);
              for (const state of STATES) this.set({ queue, state }, counts[state] ?? 0);
            } catch (error) {
              opts.onCountFailed?.(queue, error);
            }
          }),
        );
      },
    }),
    jobWaitSeconds: new Histogram({
      name: 'courier_job_wait_seconds',
      help: 'Seconds a job waited from its enqueue (or the end of its delay) to the start of its run, by queue',
      labelNames: ['queue'] as const,
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    jobSeconds: new Histogram({
      name: 'courier_job_seconds',
      help: 'Seconds one run of a job took, by queue and outcome (completed, failed, postponed)',
      labelNames: ['queue', 'outcome'] as const,
      buckets: SECONDS_BUCKETS,
      registers,
    }),
  };
}

export type QueueMetrics = ReturnType<typeof createQueueMetrics>;
