import { LRUCache } from 'lru-cache';
import type { Db } from '../db.ts';
import { hashApiKey } from './api-keys.ts';

export interface AuthenticatedClient {
  readonly id: string;
  readonly name: string;
}

const NONE = Symbol('no client');

/**
 * Resolves an API key to its client. Answers (including "no such key") are cached in-process
 * for a short TTL so the hot intake path does not query MySQL per request; a revoked key stops
 * working within that TTL. Concurrent misses for one key share one query.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, AuthenticatedClient | typeof NONE>;

  constructor(
    private readonly db: Db,
    opts: { ttlSeconds: number; max?: number },
  ) {
    this.cache = new LRUCache({
      max: opts.max ?? 10_000,
      ttl: Math.max(1, opts.ttlSeconds * 1000),
      fetchMethod: async (keyHash) => {
        const row = await this.db('api_clients')
          .select('id', 'name')
          .where({ key_hash: keyHash })
          .whereNull('revoked_at')
          .first();
        return row ? { id: String(row.id), name: String(row.name) } : NONE;
      },
    });
    this.ttlDisabled = opts.ttlSeconds === 0;
  }

  private readonly ttlDisabled: boolean;

  async authenticate(apiKey: string): Promise<AuthenticatedClient | undefined> {
    if (apiKey.length < 10 || apiKey.length > 200) return undefined;
    const keyHash = hashApiKey(apiKey);
    if (this.ttlDisabled) this.cache.delete(keyHash);
    const found = await this.cache.fetch(keyHash);
    return found === NONE || found === undefined ? undefined : found;
  }
}
