import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from '../redis.ts';

const RELEASE = readFileSync(new URL('./lua/release-lock.lua', import.meta.url), 'utf8');
const EXTEND = readFileSync(new URL('./lua/extend-lock.lua', import.meta.url), 'utf8');

type LockCommands = {
  courierReleaseLock(key: string, token: string): unknown;
  courierExtendLock(key: string, token: string, ttlMs: number): unknown;
};
type LockPipeline = LockCommands & { exec(): Promise<[Error | null, unknown][] | null> };

export interface HeldLocks {
  /** The ids whose locks were taken, in the order asked. */
  readonly held: readonly string[];
  /** The ids another holder kept for longer than the wait. */
  readonly busy: readonly string[];
  /** Aborted if a held lock is lost (its renewal failed past its TTL, or it was taken over). */
  readonly signal: AbortSignal;
  /**
   * Throws if the locks may be lost: the signal aborted, or no renewal confirmed them for a whole
   * TTL (a holder paused past it learns so here, synchronously, before its next write, without
   * waiting for its renewal timer to run).
   */
  assertHeld(): void;
  /** Gives every held lock back, in one round trip; never throws (an expired lock has nothing to give back). */
  release(): Promise<void>;
}

/** What one call for locks met (for metrics): told once the call has its locks or gave up on some. */
export interface LockReport {
  /** Locks asked for (duplicates once). */
  readonly wanted: number;
  /** Locks still held elsewhere when the call returned. */
  readonly busy: number;
  /** How long the call was willing to wait, in ms. */
  readonly waitMs: number;
  /** Whether it had to wait (some were held elsewhere at its first try, and it was willing to). */
  readonly waited: boolean;
  /** How long it waited, in ms (0 if it did not). */
  readonly waitedMs: number;
}

export interface RedisLocksOptions {
  /** The Redis key of one resource's lock. */
  readonly keyOf: (id: string) => string;
  /** A lock expires this long after its last renewal, in ms; held locks are renewed every half of it. */
  readonly ttlMs: number;
  /** How often a waiting caller tries again for the locks still held elsewhere, in ms. Default 10 */
  readonly retryMs?: number;
  /** Told of every call that took its locks or gave up on some (not of one that failed). */
  readonly onLocked?: (report: LockReport) => void;
}

/**
 * Locks for many resources at once (orders, zones), one round trip per step however many there are:
 * a pipeline of `SET key token PX ttl NX` takes them, one of compare-and-renew keeps them, one of
 * compare-and-delete gives them back. All locks of one call share a random token, so only their
 * holder renews or releases them. A caller either skips what another holder has (waitMs 0, as
 * SKIP LOCKED does in MySQL) or waits for it, bounded, and is told what stayed busy; it never
 * writes without its locks. Each key is its own command, so in a Redis Cluster the pipeline is
 * split by slot and nothing assumes the keys share a node.
 */
export class RedisLocks {
  private readonly redis: Redis & LockCommands;
  private readonly opts: RedisLocksOptions;

  constructor(redis: Redis, opts: RedisLocksOptions) {
    if (!('courierReleaseLock' in redis)) {
      redis.defineCommand('courierReleaseLock', { numberOfKeys: 1, lua: RELEASE });
      redis.defineCommand('courierExtendLock', { numberOfKeys: 1, lua: EXTEND });
    }
    this.redis = redis as Redis & LockCommands;
    this.opts = opts;
  }

  /** Takes the locks of these ids (duplicates once), waiting up to waitMs for those held elsewhere. */
  async lock(ids: readonly string[], opts: { waitMs: number }): Promise<HeldLocks> {
    const token = randomUUID();
    const wanted = [...new Set(ids)];
    const taken = new Set<string>();
    const started = Date.now();
    const deadline = started + opts.waitMs;
    let waited = false;
    try {
      for (let missing = wanted; ; missing = wanted.filter((id) => !taken.has(id))) {
        for (const id of await this.trySet(missing, token)) taken.add(id);
        if (taken.size === wanted.length || Date.now() >= deadline) break;
        waited = true;
        const retryMs = this.opts.retryMs ?? 10;
        await sleep(Math.min(retryMs * (0.5 + Math.random()), Math.max(1, deadline - Date.now())));
      }
    } catch (error) {
      await this.releaseKeys([...taken], token);
      throw error;
    }
    const held = wanted.filter((id) => taken.has(id));
    const busy = wanted.filter((id) => !taken.has(id));
    this.opts.onLocked?.({ wanted: wanted.length, busy: busy.length, waitMs: opts.waitMs, waited, waitedMs: waited ? Date.now() - started : 0 });
    const lost = new AbortController();
    const confirmed = { at: Date.now() };
    const renewal = held.length === 0 ? undefined : this.keepRenewed(held, token, lost, confirmed);
    let released = false;
    return {
      held,
      busy,
      signal: lost.signal,
      assertHeld: () => {
        lost.signal.throwIfAborted();
        if (held.length > 0 && Date.now() - confirmed.at >= this.opts.ttlMs) {
          throw new Error(`the locks of ${held.length} order(s) were not renewed within their ${this.opts.ttlMs} ms TTL: they may be another writer's`);
        }
      },
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renewal);
        await this.releaseKeys(held, token);
      },
    };
  }

  private async trySet(ids: readonly string[], token: string): Promise<string[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.set(this.opts.keyOf(id), token, 'PX', this.opts.ttlMs, 'NX');
    const results = (await pipeline.exec()) ?? [];
    const got: string[] = [];
    results.forEach(([error, reply], index) => {
      if (error) throw error;
      if (reply === 'OK') got.push(ids[index]!);
    });
    return got;
  }

  /** Renews every held lock at half its TTL; a lock found gone, or not renewed for a whole TTL, aborts the holder. */
  private keepRenewed(ids: readonly string[], token: string, lost: AbortController, confirmed: { at: number }): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (lost.signal.aborted) return clearInterval(timer);
      const sentAt = Date.now();
      const pipeline = this.redis.pipeline() as unknown as LockPipeline;
      for (const id of ids) pipeline.courierExtendLock(this.opts.keyOf(id), token, this.opts.ttlMs);
      pipeline.exec().then(
        (results) => {
          const gone = (results ?? []).findIndex(([error, reply]) => error || reply !== 1);
          if (gone >= 0) lost.abort(new Error(`lost the lock ${this.opts.keyOf(ids[gone]!)} while holding it`));
          else confirmed.at = sentAt;
        },
        () => {
          if (Date.now() - confirmed.at >= this.opts.ttlMs) lost.abort(new Error('could not renew the locks within their TTL'));
        },
      );
    }, Math.max(10, Math.floor(this.opts.ttlMs / 2)));
    timer.unref();
    return timer;
  }

  private async releaseKeys(ids: readonly string[], token: string): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = this.redis.pipeline() as unknown as LockPipeline;
    for (const id of ids) pipeline.courierReleaseLock(this.opts.keyOf(id), token);
    await pipeline.exec().catch(() => undefined); // expired or Redis away: the TTL gives them back
  }
}
