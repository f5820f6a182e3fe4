import { Mutex, TimeoutError } from 'redis-semaphore';
import { LockTimeoutError } from '../errors/index.ts';
import type { Redis } from '../redis.ts';

export interface HeldLock {
  /** Aborted if the lock was lost while held (its renewal failed and its TTL ran out). */
  readonly signal: AbortSignal;
}

/**
 * One Redis lock per order (redis-semaphore's Mutex): a random token per holder, a TTL, renewal
 * while held, release only by its holder. Waiting for it is bounded: past acquireTimeoutMs the
 * caller gets a LockTimeoutError and must retry or fail, never write without the lock. Losing it
 * while held aborts the holder's signal; the versioned cache (fencing) makes a late holder harmless
 * anyway.
 */
export class OrderLocks {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { prefix: string; lockTimeoutMs: number; acquireTimeoutMs: number },
  ) {}

  async withLock<T>(orderId: string, work: (lock: HeldLock) => Promise<T>): Promise<T> {
    const resource = `${this.opts.prefix}:lock:order:${orderId}`;
    const lost = new AbortController();
    const mutex = new Mutex(this.redis, resource, {
      lockTimeout: this.opts.lockTimeoutMs,
      acquireTimeout: this.opts.acquireTimeoutMs,
      refreshInterval: Math.floor(this.opts.lockTimeoutMs * 0.5),
      onLockLost: (error) => lost.abort(error),
    });
    try {
      await mutex.acquire();
    } catch (error) {
      if (error instanceof TimeoutError) throw new LockTimeoutError(resource, this.opts.acquireTimeoutMs);
      throw error;
    }
    try {
      return await work({ signal: lost.signal });
    } finally {
      await mutex.release().catch(() => undefined); // expired or taken over: nothing of ours to release
    }
  }
}
