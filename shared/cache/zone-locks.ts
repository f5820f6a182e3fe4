import type { Redis } from '../redis.ts';
import { RedisLocks, type LockReport } from './redis-locks.ts';

export type TryRun<T> = { readonly ran: true; readonly value: T } | { readonly ran: false };

/**
 * One Redis lock per dispatch zone, taken without waiting: a zone's dispatch runs one batch at a
 * time. Concurrent runs of one zone would only queue on the same orders' locks and defer each other.
 * Lost while held (Redis flushed or restarted), the run goes on: each order's own lock and guarded
 * UPDATE keep it correct, the zone lock only spares the contention.
 */
export class ZoneLocks {
  private readonly locks: RedisLocks;

  constructor(redis: Redis, opts: { prefix: string; lockTimeoutMs: number; onLocked?: (report: LockReport) => void }) {
    this.locks = new RedisLocks(redis, {
      keyOf: (zoneId) => `${opts.prefix}:lock:zone:${zoneId}`,
      ttlMs: opts.lockTimeoutMs,
      ...(opts.onLocked ? { onLocked: opts.onLocked } : {}),
    });
  }

  async tryRun<T>(zoneId: string, work: () => Promise<T>): Promise<TryRun<T>> {
    const lock = await this.locks.lock([zoneId], { waitMs: 0 });
    if (lock.held.length === 0) return { ran: false };
    try {
      return { ran: true, value: await work() };
    } finally {
      await lock.release();
    }
  }
}
