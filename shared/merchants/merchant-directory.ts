import { LRUCache } from 'lru-cache';
import type { Db } from '../db.ts';

export interface Merchant {
  readonly id: string;
  readonly zoneId: string;
  readonly lat: number;
  readonly lng: number;
}

const NONE = Symbol('no merchant');

/**
 * Merchants change rarely and every order needs its merchant's location and zone, so lookups are
 * cached in-process (unknown ids briefly too, so a typo storm cannot hammer MySQL). Concurrent
 * misses for one id share one query.
 */
export class MerchantDirectory {
  private readonly cache: LRUCache<string, Merchant | typeof NONE>;

  private readonly db: Db;

  constructor(
    db: Db,
    opts: { ttlMs?: number; max?: number } = {},
  ) {
    this.db = db;
    this.cache = new LRUCache({
      max: opts.max ?? 50_000,
      ttl: opts.ttlMs ?? 60_000,
      fetchMethod: async (id, _stale, { options }) => {
        const row = await this.db('merchants').select('id', 'zone_id', 'lat', 'lng').where({ id }).first();
        if (!row) {
          options.ttl = Math.min(5_000, opts.ttlMs ?? 5_000);
          return NONE;
        }
        return { id: String(row.id), zoneId: String(row.zone_id), lat: Number(row.lat), lng: Number(row.lng) };
      },
    });
  }

  /** The cached answer without waiting: a merchant, null for an id known to be unknown, undefined if not cached. */
  peek(id: string): Merchant | null | undefined {
    const hit = this.cache.get(id);
    return hit === NONE ? null : hit;
  }

  async get(id: string): Promise<Merchant | undefined> {
    const found = await this.cache.fetch(id);
    return found === NONE || found === undefined ? undefined : found;
  }
}
