import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';
import { ApiError } from '../errors/index.ts';
import type { Redis } from '../redis.ts';
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

/**
 * Rate limits per API client, shared by every web process through Redis (@fastify/rate-limit with
 * a store of ours, LeasedRateStore: a counter per client per one-second window, from which each
 * process leases a batch of tokens, a share of the client's rate, in one script call). Each
 * route of the scope is limited, reads as well as writes, all against one budget per client: its
 * own `rate_per_second`, or RATE_LIMIT_PER_SECOND. Registered after the key is checked (the hook
 * runs after the scope's authentication), so the client is known. Over its rate, a request is
 * answered 429 RATE_LIMITED with Retry-After; with Redis away, it is let through (fail open), and
 * counted.
 */
export async function registerRateLimit(scope: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  const store = new LeasedRateStore({ redis: opts.redis, keyPrefix: opts.keyPrefix, onFailOpen: opts.onFailOpen });
  await scope.register(fastifyRateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: 1000,
    max: (request: FastifyRequest) => request.client?.ratePerSecond ?? opts.defaultPerSecond,
    keyGenerator: (request: FastifyRequest) => request.client?.id ?? 'anonymous',
    skipOnError: true,
    // The library makes its store with `new`: one store of ours, whatever it passes.
    store: function LeasedStore() {
      return store;
    } as unknown as never,
    onExceeded: () => opts.onLimited(),
    errorResponseBuilder: (_request, context) =>
      new ApiError('RATE_LIMITED', `This API key may make ${context.max} requests per second; retry in ${context.after}`),
  });
}
