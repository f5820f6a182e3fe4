import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.ts';

export type { Redis };

/**
 * A producer connection: commands fail fast while Redis is away (no offline queue), so a dead
 * Redis costs the caller a bounded error instead of a request that waits forever.
 */
export function createProducerRedis(config: Pick<Config, 'redisUrl' | 'redisTimeoutMs'>, extra: RedisOptions = {}): Redis {
  return new Redis(config.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: config.redisTimeoutMs,
    commandTimeout: config.redisTimeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    ...extra,
  });
}

/** A worker connection: BullMQ workers need blocking commands that wait as long as they must. */
export function createWorkerRedis(config: Pick<Config, 'redisUrl'>, extra: RedisOptions = {}): Redis {
  return new Redis(config.redisUrl, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    ...extra,
  });
}
