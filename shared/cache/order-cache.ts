import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from '../redis.ts';
import type { OrderRecord } from '../orders/read-order.ts';

const SET_IF_NEWER = readFileSync(new URL('./lua/set-order-if-newer.lua', import.meta.url), 'utf8');

type CacheRedis = Redis & {
  courierSetOrderIfNewer(key: string, epochKey: string, version: number, json: string, ttlMs: number, epoch: string): Promise<number>;
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

  private readonly opts: { prefix: string; ttlMs: number };

  constructor(
    redis: Redis,
    opts: { prefix: string; ttlMs: number },
  ) {
    this.opts = opts;
    if (!('courierSetOrderIfNewer' in redis)) {
      redis.defineCommand('courierSetOrderIfNewer', { numberOfKeys: 2, lua: SET_IF_NEWER });
    }
    this.redis = redis as CacheRedis;
  }

  key(orderId: string): string {
    return `${this.opts.prefix}:order:${orderId}`;
  }

  private get epochKey(): string {
    return `${this.opts.prefix}:epoch`;
  }

  /**
   * The cache's current epoch, made if Redis has none (it started empty). Read it before reading
   * MySQL and hand it to fill(): a fill from before Redis lost everything is refused.
   */
  async epoch(): Promise<string> {
    const existing = await this.redis.get(this.epochKey);
    if (existing) return existing;
    await this.redis.set(this.epochKey, randomUUID(), 'NX');
    return (await this.redis.get(this.epochKey)) ?? '';
  }

  async get(orderId: string): Promise<CachedOrder> {
    const [version, data] = await this.redis.hmget(this.key(orderId), 'v', 'd');
    if (version === null) return { kind: 'miss' };
    if (!data) return { kind: 'stale', version: Number(version) };
    return { kind: 'hit', record: JSON.parse(data) as OrderRecord };
  }

  /**
   * Caches the order unless a newer version (or a stale mark of this one) is there, or Redis was
   * emptied since `epoch` was read.
   */
  async fill(record: OrderRecord, epoch: string): Promise<boolean> {
    const { order } = record;
    const written = await this.redis.courierSetOrderIfNewer(
      this.key(order.id),
      this.epochKey,
      order.version,
      JSON.stringify(record),
      this.opts.ttlMs,
      epoch,
    );
    return written === 1;
  }

  /** Caches many orders in one round trip (warm-up), as fill() does each; resolves with how many were written. */
  async fillMany(records: readonly OrderRecord[], epoch: string): Promise<number> {
    if (records.length === 0) return 0;
    const pipeline = this.redis.pipeline() as unknown as {
      courierSetOrderIfNewer(key: string, epochKey: string, version: number, json: string, ttlMs: number, epoch: string): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const record of records) {
      const { order } = record;
      pipeline.courierSetOrderIfNewer(this.key(order.id), this.epochKey, order.version, JSON.stringify(record), this.opts.ttlMs, epoch);
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

  /** Marks many orders stale ahead of a batch change, in one round trip, as invalidate() does each. */
  async invalidateMany(orders: readonly { readonly id: string; readonly version: number }[]): Promise<void> {
    if (orders.length === 0) return;
    const pipeline = this.redis.pipeline() as unknown as {
      courierSetOrderIfNewer(key: string, epochKey: string, version: number, json: string, ttlMs: number, epoch: string): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const order of orders) pipeline.courierSetOrderIfNewer(this.key(order.id), this.epochKey, order.version, '', this.opts.ttlMs, '');
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  /** forget() for many orders (a batch that changed none of them), in one round trip. */
  async forgetMany(orderIds: readonly string[]): Promise<void> {
    if (orderIds.length === 0) return;
    // One DEL per key: the keys live in different slots of a Redis Cluster.
    const pipeline = this.redis.pipeline();
    for (const id of orderIds) pipeline.del(this.key(id));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  /** Marks `version` stale ahead of a change: only a newer version may be cached after this. */
  async invalidate(orderId: string, version: number): Promise<void> {
    await this.redis.courierSetOrderIfNewer(this.key(orderId), this.epochKey, version, '', this.opts.ttlMs, '');
  }
}
