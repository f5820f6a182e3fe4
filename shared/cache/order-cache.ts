import { readFileSync } from 'node:fs';
import type { Redis } from '../redis.ts';
import type { OrderRecord } from '../orders/read-order.ts';

const SET_IF_NEWER = readFileSync(new URL('./lua/set-order-if-newer.lua', import.meta.url), 'utf8');

type CacheRedis = Redis & {
  courierSetOrderIfNewer(key: string, version: number, json: string, ttlMs: number): Promise<number>;
};

export type CachedOrder =
  | { readonly kind: 'hit'; readonly record: OrderRecord }
  | { readonly kind: 'stale'; readonly version: number }
  | { readonly kind: 'miss' };

/**
 * L2: orders in Redis, each entry carrying the row's version. Writes go through a compare-and-set
 * (shared/cache/lua/set-order-if-newer.lua), so cached versions never go backwards whatever the
 * order in which writers and readers arrive, and a paused writer can never put old data back.
 */
export class OrderCache {
  private readonly redis: CacheRedis;

  constructor(
    redis: Redis,
    private readonly opts: { prefix: string; ttlMs: number },
  ) {
    if (!('courierSetOrderIfNewer' in redis)) {
      redis.defineCommand('courierSetOrderIfNewer', { numberOfKeys: 1, lua: SET_IF_NEWER });
    }
    this.redis = redis as CacheRedis;
  }

  key(orderId: string): string {
    return `${this.opts.prefix}:order:${orderId}`;
  }

  async get(orderId: string): Promise<CachedOrder> {
    const [version, data] = await this.redis.hmget(this.key(orderId), 'v', 'd');
    if (version === null) return { kind: 'miss' };
    if (!data) return { kind: 'stale', version: Number(version) };
    return { kind: 'hit', record: JSON.parse(data) as OrderRecord };
  }

  /** Caches the order unless a newer version (or a stale mark of this one) is there. */
  async fill(record: OrderRecord): Promise<boolean> {
    const { order } = record;
    return (await this.redis.courierSetOrderIfNewer(this.key(order.id), order.version, JSON.stringify(record), this.opts.ttlMs)) === 1;
  }

  /** Caches many orders in one round trip (warm-up); resolves with how many were written. */
  async fillMany(records: readonly OrderRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    const pipeline = this.redis.pipeline() as unknown as {
      courierSetOrderIfNewer(key: string, version: number, json: string, ttlMs: number): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const record of records) {
      pipeline.courierSetOrderIfNewer(this.key(record.order.id), record.order.version, JSON.stringify(record), this.opts.ttlMs);
    }
    const results = (await pipeline.exec()) ?? [];
    let written = 0;
    for (const [error, result] of results) {
      if (error) throw error;
      if (result === 1) written += 1;
    }
    return written;
  }

  /**
   * Drops the entry, tombstone and all. Only for a change that did not happen (the version the
   * row has is the one anyone may cache again) and only under the order's lock.
   */
  async forget(orderId: string): Promise<void> {
    await this.redis.del(this.key(orderId));
  }

  /** Marks `version` stale ahead of a change: only a newer version may be cached after this. */
  async invalidate(orderId: string, version: number): Promise<void> {
    await this.redis.courierSetOrderIfNewer(this.key(orderId), version, '', this.opts.ttlMs);
  }
}
