import { Mutex } from 'redis-semaphore';
import type { Redis } from '../redis.ts';

export type TryRun<T> = { readonly ran: true; readonly value: T } | { readonly ran: false };

/**
 * One Redis lock per dispatch zone (redis-semaphore's Mutex: random token, TTL, renewal while
 * held), taken without waiting: a zone's dispatch runs one batch at a time. Concurrent runs of one
 * zone would only queue on the same orders' locks and defer each other.
 */
export class ZoneLocks {
  private readonly redis: Redis;
  private readonly opts: { prefix: string; lockTimeoutMs: number };

  constructor(
    redis: Redis,
    opts: { prefix: string; lockTimeoutMs: number },
  ) {
    this.redis = redis;
    this.opts = opts;
  }

  async tryRun<T>(zoneId: string, work: () => Promise<T>): Promise<TryRun<T>> {
    const mutex = new Mutex(this.redis, `${this.opts.prefix}:lock:zone:${zoneId}`, {
      lockTimeout: this.opts.lockTimeoutMs,
      // tryAcquire() retries until acquireTimeout unless told otherwise: one attempt, no waiting.
      acquireAttemptsLimit: 1,
      refreshInterval: Math.floor(this.opts.lockTimeoutMs * 0.5),
      // Lost while held (Redis flushed or restarted): the run goes on; each order's own lock and
      // guarded UPDATE keep it correct, the zone lock only spares the contention.
      onLockLost: () => undefined,
    });
    if (!(await mutex.tryAcquire())) return { ran: false };
    try {
      return { ran: true, value: await work() };
    } finally {
      await mutex.release().catch(() => undefined);
    }
  }
}
