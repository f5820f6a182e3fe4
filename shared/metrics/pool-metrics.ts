import { Counter, Gauge, type Registry } from 'prom-client';

/** What the gauges read of a thread pool (a piscina pool). */
export interface ThreadPoolView {
  readonly queueSize: number;
  readonly threads: readonly unknown[];
  readonly maxThreads: number;
  /** Tasks completed since the pool started. */
  readonly completed: number;
  /** Milliseconds since the pool started. */
  readonly duration: number;
  /** The tasks' run times, in milliseconds. */
  readonly histogram: { readonly runTime: { readonly mean: number } };
}

/** Milliseconds the pool's threads spent running tasks. */
const busyMs = (pool: ThreadPoolView) => (pool.completed > 0 ? pool.completed * pool.histogram.runTime.mean : 0);

/**
 * The worker's piscina pools (price, match), read at scrape time: a pool not started yet (they
 * start on first use) has no series. Busy seconds is the counter to take a rate of (recent
 * utilisation: rate(busy) / max threads); the utilisation gauge averages since the pool started.
 * Computed here, not read from piscina's `utilization`, which (piscina 5.3) divides its mean run
 * time, already in milliseconds, by 1000 once more and so reads a thousand times too low.
 */
export function createPoolMetrics(registry: Registry) {
  const registers = [registry];
  const pools = new Map<string, ThreadPoolView>();
  const gauge = (read: (pool: ThreadPoolView) => number) =>
    function (this: Gauge<'pool'>) {
      for (const [pool, view] of pools) this.set({ pool }, read(view));
    };
  return {
    /** Reads this pool at each scrape from now on. */
    trackPool(name: string, pool: ThreadPoolView): void {
      pools.set(name, pool);
    },
    poolQueueSize: new Gauge({
      name: 'courier_cpu_pool_queue_size',
      help: 'Tasks waiting for a thread of each CPU pool (price, match)',
      labelNames: ['pool'] as const,
      registers,
      collect: gauge((pool) => pool.queueSize),
    }),
    poolThreads: new Gauge({
      name: 'courier_cpu_pool_threads',
      help: 'Threads each CPU pool runs now',
      labelNames: ['pool'] as const,
      registers,
      collect: gauge((pool) => pool.threads.length),
    }),
    poolUtilization: new Gauge({
      name: 'courier_cpu_pool_utilization_ratio',
      help: "Each CPU pool's busy time over its capacity since the pool started: run time / (time since start x max threads)",
      labelNames: ['pool'] as const,
      registers,
      collect: gauge((pool) => (pool.duration > 0 ? busyMs(pool) / (pool.duration * pool.maxThreads) : 0)),
    }),
    poolBusySeconds: new Counter({
      name: 'courier_cpu_pool_busy_seconds_total',
      help: 'Seconds the threads of each CPU pool spent running tasks (tasks completed x their mean run time)',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        for (const [pool, view] of pools) this.inc({ pool }, busyMs(view) / 1000);
      },
    }),
  };
}

export type PoolMetrics = ReturnType<typeof createPoolMetrics>;
