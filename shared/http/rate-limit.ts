import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/index.ts';
import type { AuthenticatedClient } from '../clients/authenticator.ts';
import type { Redis } from '../redis.ts';
import { sendError } from './error-handler.ts';
import { LeasedRateStore } from './leased-rate-store.ts';

export interface RateLimitOptions {
  /** A connection of the limiter's own: its command timeout is RATE_LIMIT_TIMEOUT_MS, not the producer's. */
  readonly redis: Redis;
  /** RATE_LIMIT_PER_SECOND: a client without a rate of its own gets this many requests a second. */
  readonly defaultPerSecond: number;
  /** Redis key prefix of the counters (one key per client). */
  readonly keyPrefix: string;
  readonly onLimited: () => void;
  /** A check that failed (Redis away, or slower than its timeout): the request was let through. */
  readonly onFailOpen: (error: Error) => void;
}

const WINDOW_MS = 1000;

/**
 * Rate limits per API client, shared by every web process through Redis: a counter per client per
 * one-second window, from which each process leases a share of the client's rate in one script call
 * (LeasedRateStore) and spends it in memory. Each route of the scope is limited, reads as well as
 * writes, against one budget per client: its own `rate_per_second`, or RATE_LIMIT_PER_SECOND.
 * Added after the key is checked (the scope's authentication hook runs first), so the client is
 * known. Answers carry X-RateLimit-Limit, -Remaining and -Reset; over the rate, 429 RATE_LIMITED
 * with Retry-After; with Redis away, the request goes through (fail open), counted.
 *
 * A callback hook of our own rather than @fastify/rate-limit's async one (the same headers, codes
 * and store): a request that spends a leased token is decided in the same tick with no promise,
 * and the library's hook cost a cached read 12 of its 38 µs (bench/RESULTS.md, issue 14). A request
 * with a token of this process's lease left makes no callback and no result object either.
 */
export class ClientRateLimit {
  private readonly store: LeasedRateStore;
  private readonly opts: RateLimitOptions;

  constructor(opts: RateLimitOptions) {
    this.opts = opts;
    this.store = new LeasedRateStore({ redis: opts.redis, keyPrefix: opts.keyPrefix, onFailOpen: opts.onFailOpen });
  }

  /** The client's requests a second: its own, or RATE_LIMIT_PER_SECOND. */
  maxOf(client: AuthenticatedClient | null): number {
    return client?.ratePerSecond ?? this.opts.defaultPerSecond;
  }

  /**
   * Spends one of the client's tokens this process leased, when it holds one in a window still open
   * at `now` (never past the client's rate), and adds the limit headers the hook would have set to
   * `headers` (name, value, ...). false: only the hook can decide (it asks Redis, or refuses);
   * nothing was spent.
   */
  spendHeld(client: AuthenticatedClient, now: number, headers: string[]): boolean {
    const lease = this.store.spendLeased(client.id, now);
    if (!lease) return false;
    const max = this.maxOf(client);
    headers.push(
      'x-ratelimit-limit', String(max),
      'x-ratelimit-remaining', String(max - (lease.base + lease.spent)),
      'x-ratelimit-reset', String(resetSecondsOf(lease.endsAt - now)),
    );
    return true;
  }

  /** Limits each route of `scope`; added after its authentication hook, so the client is known. */
  register(scope: FastifyInstance): void {
    scope.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const max = this.maxOf(request.client);
      const key = request.client?.id ?? 'anonymous';
      const now = performance.now();
      const lease = this.store.spendLeased(key, now);
      if (lease) return this.decide(reply, done, max, lease.base + lease.spent, lease.endsAt - now);
      this.store.incr(
        key,
        // A failed check lets the request through (the store counted it as failing open).
        (error, counted) => (error || !counted ? this.decide(reply, done, max, 0, 0) : this.decide(reply, done, max, counted.current, counted.ttl)),
        WINDOW_MS,
        max,
      );
    });
  }

  /** Headers, and the request goes on or is refused; `current`: the client's count with this request. */
  private decide(reply: FastifyReply, done: () => void, max: number, current: number, ttlMs: number): void {
    const resetSeconds = resetSecondsOf(ttlMs);
    reply.header('x-ratelimit-limit', max);
    if (current <= max) {
      reply.header('x-ratelimit-remaining', max - current).header('x-ratelimit-reset', resetSeconds);
      done();
      return;
    }
    this.opts.onLimited();
    const retryAfter = Math.max(1, resetSeconds);
    reply.header('x-ratelimit-remaining', 0).header('x-ratelimit-reset', resetSeconds).header('retry-after', retryAfter);
    sendError(reply, new ApiError('RATE_LIMITED', `This API key may make ${max} requests per second; retry in ${retryAfter} second${retryAfter === 1 ? '' : 's'}`));
  }
}

/** X-RateLimit-Reset: the window's time left, in whole seconds up. */
function resetSecondsOf(ttlMs: number): number {
  return Math.ceil(ttlMs / 1000);
}
