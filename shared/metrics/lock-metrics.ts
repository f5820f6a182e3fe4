import { Counter, Histogram, type Registry } from 'prom-client';
import type { LockReport } from '../cache/redis-locks.ts';

/** The Redis locks: an order's (the write routine's), a dispatch zone's. */
export type LockKind = 'order' | 'zone';
const OUTCOMES = ['acquired', 'waited', 'timed_out', 'skipped'] as const;

/**
 * What each call for locks met, per kind of lock (one call takes a whole batch's locks): all at
 * once (acquired), after waiting for other holders (waited), not all within its wait (timed_out:
 * the caller gets a LockTimeoutError or a retry), or some held elsewhere and not waited for
 * (skipped: a zone another run holds, a batch's second pass). Every outcome starts at 0 for the
 * kinds the process takes: waits and timeouts that stay 0 are the good news.
 */
export function createLockMetrics(registry: Registry, kinds: readonly LockKind[]) {
  const registers = [registry];
  const lockRequests = new Counter({
    name: 'courier_lock_requests_total',
    help: 'Calls for a batch of Redis locks, by kind (order, zone) and outcome (acquired, waited, timed_out, skipped)',
    labelNames: ['lock', 'outcome'] as const,
    registers,
  });
  const lockWaitSeconds = new Histogram({
    name: 'courier_lock_wait_seconds',
    help: 'Seconds a call waited for locks other writers held (calls that waited or timed out), by kind',
    labelNames: ['lock'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  for (const lock of kinds) {
    for (const outcome of OUTCOMES) lockRequests.inc({ lock, outcome }, 0);
    lockWaitSeconds.zero({ lock });
  }
  return {
    lockRequests,
    lockWaitSeconds,
    /** What a RedisLocks of this kind reports each call to. */
    lockObserver(lock: LockKind): (report: LockReport) => void {
      return (report) => {
        const outcome = report.busy > 0 ? (report.waitMs > 0 ? 'timed_out' : 'skipped') : report.waited ? 'waited' : 'acquired';
        lockRequests.inc({ lock, outcome });
        if (report.waited) lockWaitSeconds.observe({ lock }, report.waitedMs / 1000);
      };
    },
  };
}

export type LockMetrics = ReturnType<typeof createLockMetrics>;
