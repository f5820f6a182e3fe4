import { LRUCache } from 'lru-cache';
import { EXACT_TTL } from '../cache/exact-ttl.ts';
import type { Db } from '../db.ts';
import { hashApiKey } from './api-keys.ts';

const KEY_SHAPE = /^\S{10,200}$/;

export interface AuthenticatedClient {
  readonly id: string;
  readonly name: string;
  /** The client's own rate limit in requests per second; null: RATE_LIMIT_PER_SECOND. */
  readonly ratePerSecond: number | null;
}

const NONE = Symbol('no client');

/**
 * Resolves an API key to its client. Answers (including "no such key") are cached in-process
 * for a short TTL so the hot intake path neither queries MySQL nor hashes per request; a revoked
 * key, or a client's new rate, takes effect within that TTL. Concurrent misses for one key share
 * one query.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, AuthenticatedClient | typeof NONE>;

  private readonly db: Db;

  constructor(
    db: Db,
    opts: { ttlSeconds: number; max?: number },
  ) {
    this.db = db;
    this.cache = new LRUCache({
      max: opts.max ?? 10_000,
      ttl: Math.max(1, opts.ttlSeconds * 1000),
      ...EXACT_TTL,
      fetchMethod: async (apiKey) => {
        const row = await this.db('api_clients')
          .select('id', 'name', 'rate_per_second')
          .where({ key_hash: hashApiKey(apiKey) })
          .whereNull('revoked_at')
          .first();
        if (!row) return NONE;
        const rate = row.rate_per_second === null ? null : Number(row.rate_per_second);
        return { id: String(row.id), name: String(row.name), ratePerSecond: rate };
      },
    });
  }

  /** The cached answer without waiting: a client, null for a key known to be bad, undefined if not cached. */
  peek(apiKey: string): AuthenticatedClient | null | undefined {
    const hit = this.cache.get(apiKey);
    return hit === NONE ? null : hit;
  }

  /**
   * A key is 10-200 characters without white space (ours are ck_ and base64url): anything else is
   * refused here, before it is looked up or cached, so a held key never has white space in it
   * (heldClientOf in shared/http/authenticate.ts relies on that).
   */
  async authenticate(apiKey: string): Promise<AuthenticatedClient | undefined> {
    if (!KEY_SHAPE.test(apiKey)) return undefined;
    const found = await this.cache.fetch(apiKey);
    return found === NONE || found === undefined ? undefined : found;
  }
}
