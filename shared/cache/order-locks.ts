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
  private readonly redis: Redis;
  private readonly opts: { prefix: string; lockTimeoutMs: number; acquireTimeoutMs: number };

  constructor(
    redis: Redis,
    opts: { prefix: string; lockTimeoutMs: number; acquireTimeoutMs: number },
  ) {
    this.redis = redis;
    this.opts = opts;
  }

  private mutex(orderId: string, lost: AbortController, opts: { once?: boolean } = {}): { mutex: Mutex; resource: string } {
    const resource = `${this.opts.prefix}:lock:order:${orderId}`;
    const mutex = new Mutex(this.redis, resource, {
      lockTimeout: this.opts.lockTimeoutMs,
      acquireTimeout: this.opts.acquireTimeoutMs,
      // redis-semaphore's tryAcquire() retries until acquireTimeout; one attempt is "without waiting".
      ...(opts.once ? { acquireAttemptsLimit: 1 } : {}),
      refreshInterval: Math.floor(this.opts.lockTimeoutMs * 0.5),
      onLockLost: (error) => lost.abort(error),
    });
    return { mutex, resource };
  }

  async withLock<T>(orderId: string, work: (lock: HeldLock) => Promise<T>): Promise<T> {
    const lost = new AbortController();
    const { mutex, resource } = this.mutex(orderId, lost);
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

  /**
   * Takes the locks of many orders at once, without waiting: an order whose lock is held elsewhere
   * is left out (a batch skips what another writer is busy with, as SKIP LOCKED does in MySQL).
   * `signal` aborts if any of the held locks is lost; `release` gives them all back.
   */
  async tryLockMany(orderIds: readonly string[]): Promise<HeldLocks> {
    const lost = new AbortController();
    const mutexes = orderIds.map((orderId) => ({ orderId, mutex: this.mutex(orderId, lost, { once: true }).mutex }));
    const taken = await Promise.allSettled(mutexes.map(({ mutex }) => mutex.tryAcquire()));
    const held = mutexes.filter((_, index) => {
      const outcome = taken[index]!;
      return outcome.status === 'fulfilled' && outcome.value;
    });
    const failure = taken.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    const release = async () => {
      await Promise.all(held.map(({ mutex }) => mutex.release().catch(() => undefined)));
    };
    if (failure) {
      await release();
      throw failure.reason;
    }
    return { orderIds: held.map(({ orderId }) => orderId), signal: lost.signal, release };
  }
}

export interface HeldLocks extends HeldLock {
  /** The orders whose locks were taken, in the order asked. */
  readonly orderIds: readonly string[];
  release(): Promise<void>;
}
