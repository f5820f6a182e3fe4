import type { Db } from '../db.ts';
import { MAX_RATE_PER_SECOND } from '../config.ts';
import { findApiClient } from './find-client.ts';
import type { ApiClientRow } from './client-row.ts';

/** A client's own rate limit: 1 to MAX_RATE_PER_SECOND requests per second, or null for RATE_LIMIT_PER_SECOND. */
export function checkRate(rate: number | null): number | null {
  if (rate !== null && (!Number.isInteger(rate) || rate < 1 || rate > MAX_RATE_PER_SECOND)) {
    throw new RangeError(`a rate is a whole number of requests per second from 1 to ${MAX_RATE_PER_SECOND}`);
  }
  return rate;
}

/**
 * Sets a client's own rate (named by name or key prefix). Web processes apply it within
 * AUTH_CACHE_TTL_SECONDS, when they next read the key.
 */
export async function setClientRate(db: Db, nameOrPrefix: string, rate: number | null): Promise<ApiClientRow> {
  checkRate(rate);
  const client = await findApiClient(db, nameOrPrefix);
  await db('api_clients').where({ id: client.id }).update({ rate_per_second: rate });
  return { ...client, ratePerSecond: rate };
}
