import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';
import { ApiError } from '../errors/index.ts';
import type { Redis } from '../redis.ts';

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

/** The part of @fastify/rate-limit's Redis store we wrap (the package ships it without types). */
interface Store {
  incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void;
  child(routeOptions: unknown): Store;
}
type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => Store;

const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore') as RedisStoreCtor;

/** The library's Redis store, telling us of each check that failed (and so was let through: skipOnError). */
function countingRedisStore(opts: RateLimitOptions) {
  return class CountingRedisStore implements Store {
    private readonly inner: Store;

    constructor(params: object, inner?: Store) {
      const { continueExceeding = false, exponentialBackoff = false } = params as { continueExceeding?: boolean; exponentialBackoff?: boolean };
      this.inner = inner ?? new RedisStore(continueExceeding, exponentialBackoff, opts.redis, opts.keyPrefix);
    }

    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void {
      this.inner.incr(
        key,
        (error, result) => {
          if (error) opts.onFailOpen(error);
          callback(error, result);
        },
        timeWindow,
        max,
      );
    }

    child(routeOptions: unknown): Store {
      return new CountingRedisStore({}, this.inner.child(routeOptions));
    }
  };
}

/**
 * Rate limits per API client, shared by every web process through Redis (@fastify/rate-limit with
 * its Redis store: one script call per request, a counter per client per one-second window). Each
 * route of the scope is limited, reads as well as writes, all against one budget per client: its
 * own `rate_per_second`, or RATE_LIMIT_PER_SECOND. Registered after the key is checked (the hook
 * runs after the scope's authentication), so the client is known. Over its rate, a request is
 * answered 429 RATE_LIMITED with Retry-After; with Redis away, it is let through (fail open), and
 * counted.
 */
export async function registerRateLimit(scope: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  await scope.register(fastifyRateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: 1000,
    max: (request: FastifyRequest) => request.client?.ratePerSecond ?? opts.defaultPerSecond,
    keyGenerator: (request: FastifyRequest) => request.client?.id ?? 'anonymous',
    skipOnError: true,
    store: countingRedisStore(opts),
    onExceeded: () => opts.onLimited(),
    errorResponseBuilder: (_request, context) =>
      new ApiError('RATE_LIMITED', `This API key may make ${context.max} requests per second; retry in ${context.after}`),
  });
}
