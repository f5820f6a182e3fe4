import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Redis } from '../redis.ts';

const LEASE_TOKENS = readFileSync(new URL('./lua/lease-rate-tokens.lua', import.meta.url), 'utf8');

type LeaseCommand = { courierLeaseRateTokens(key: string, windowMs: number, tokens: number): Promise<[number, number]> };

/**
 * A process takes at most this share of a client's per-second rate in one lease: the round trips to
 * Redis fall by as much (one per lease instead of one per request), and what one process may hold
 * unspent while another is refused stays within 1% of the rate. Rates under 200 a second lease one
 * token at a time: every request is checked in Redis, exactly as a counter per request would be.
 */
const LEASE_SHARE = 100;

export function leaseSizeOf(maxPerWindow: number): number {
  return Math.max(1, Math.floor(maxPerWindow / LEASE_SHARE));
}

/** How a check is answered: the client's count in the window once this request is counted, and the window's time left (ms). */
export type StoreCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/** Tokens base+1 .. base+granted of a client's window, this process's to spend until endsAt. */
export interface Lease {
  readonly base: number;
  readonly granted: number;
  /** The window's counter as Redis answered (over the limit when nothing was granted). */
  readonly count: number;
  readonly endsAt: number;
  spent: number;
}

export interface LeasedRateStoreOptions {
  readonly redis: Redis;
  /** Redis key prefix of the counters (one key per client). */
  readonly keyPrefix: string;
  /** A lease that failed (Redis away or slower than its timeout): each request it held up is let through. */
  readonly onFailOpen: (error: Error) => void;
}

/**
 * The rate limiter's store: one counter per client per window in Redis, shared by every web
 * process, as a Redis rate-limit store keeps it, but a process leases a batch of the
 * window's tokens in one round trip (lua/lease-rate-tokens.lua) and spends them in memory. Nothing
 * is spent that the shared counter did not grant below the limit, so the processes together never
 * let more than the rate through in a window; a lease lives no longer than the window it came
 * from (its end taken from the moment it was asked, never later than Redis's). Concurrent requests
 * of one client share one lease in flight.
 */
export class LeasedRateStore {
  private readonly redis: Redis & LeaseCommand;
  private readonly opts: LeasedRateStoreOptions;
  private readonly leases = new Map<string, Lease>();
  private readonly asking = new Map<string, Promise<Lease>>();

  constructor(opts: LeasedRateStoreOptions) {
    if (!('courierLeaseRateTokens' in opts.redis)) opts.redis.defineCommand('courierLeaseRateTokens', { numberOfKeys: 1, lua: LEASE_TOKENS });
    this.redis = opts.redis as Redis & LeaseCommand;
    this.opts = opts;
  }

  incr(key: string, callback: StoreCallback, timeWindow: number, max: number): void {
    if (this.spend(key, callback)) return;
    let asking = this.asking.get(key);
    if (!asking) {
      asking = this.lease(key, timeWindow, max).finally(() => this.asking.delete(key));
      this.asking.set(key, asking);
    }
    asking.then(
      (lease) => {
        if (this.spend(key, callback)) return;
        // A full lease that the requests waiting on it used up: ask again. One that granted less
        // than it asked for means the window's budget is gone: over the limit.
        if (lease.granted === leaseSizeOf(max)) this.incr(key, callback, timeWindow, max);
        else callback(null, { current: Math.max(lease.count, max + 1), ttl: Math.max(0, lease.endsAt - performance.now()) });
      },
      (error: unknown) => {
        const cause = error instanceof Error ? error : new Error(String(error));
        this.opts.onFailOpen(cause);
        callback(cause);
      },
    );
  }

  /**
   * Spends a token of the client's lease when it has one left in a window still open (at `now`):
   * the lease, whose count is then `base + spent`; undefined: ask incr(). The hot path of a limited
   * request, with no callback and no result object to make.
   */
  spendLeased(key: string, now: number): Readonly<Lease> | undefined {
    const lease = this.leases.get(key);
    if (!lease) return undefined;
    if (lease.endsAt <= now) {
      this.leases.delete(key);
      return undefined;
    }
    if (lease.spent >= lease.granted) return undefined;
    lease.spent += 1;
    return lease;
  }

  private spend(key: string, callback: StoreCallback): boolean {
    const now = performance.now();
    const lease = this.spendLeased(key, now);
    if (!lease) return false;
    callback(null, { current: lease.base + lease.spent, ttl: lease.endsAt - now });
    return true;
  }

  private async lease(key: string, timeWindow: number, max: number): Promise<Lease> {
    const askedAt = performance.now();
    const tokens = leaseSizeOf(max);
    const [count, ttl] = await this.redis.courierLeaseRateTokens(this.opts.keyPrefix + key, timeWindow, tokens);
    const base = count - tokens;
    const lease: Lease = { base, granted: Math.max(0, Math.min(tokens, max - base)), count, endsAt: askedAt + ttl, spent: 0 };
    this.leases.set(key, lease);
    return lease;
  }
}
