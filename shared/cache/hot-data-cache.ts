import type { Redis } from '../redis.ts';

/** A merchant as the cache keeps it: `${prefix}:merchant:<id>`, a hash of zone, lat, lng, name. */
export interface CachedMerchant {
  readonly id: string;
  readonly zone: string;
  readonly lat: number;
  readonly lng: number;
  readonly name: string;
}

/** A rider as the cache keeps it: `${prefix}:rider:<id>`, a hash of zone, lat, lng, status, activeOrders, capacity. */
export interface CachedRider {
  readonly id: string;
  readonly zone: string;
  readonly lat: number;
  readonly lng: number;
  readonly status: string;
  readonly activeOrders: number;
  readonly capacity: number;
}

export function merchantCacheKey(prefix: string, merchantId: string): string {
  return `${prefix}:merchant:${merchantId}`;
}

export function riderCacheKey(prefix: string, riderId: string): string {
  return `${prefix}:rider:${riderId}`;
}

/**
 * Merchants and rider positions in Redis, beside the order cache and under its prefix and TTL.
 * Each put writes a whole page in one pipelined round trip (HSET and PEXPIRE per entry). These
 * entries carry no version: they are a snapshot of MySQL as the writer read it, replaced by the
 * next snapshot and gone after the TTL.
 */
export class HotDataCache {
  private readonly redis: Redis;
  private readonly opts: { prefix: string; ttlMs: number };

  constructor(
    redis: Redis,
    opts: { prefix: string; ttlMs: number },
  ) {
    this.redis = redis;
    this.opts = opts;
  }

  async putMerchants(merchants: readonly CachedMerchant[]): Promise<void> {
    await this.put(
      merchants.map(({ id, zone, lat, lng, name }) => [merchantCacheKey(this.opts.prefix, id), { zone, lat, lng, name }]),
    );
  }

  async putRiders(riders: readonly CachedRider[]): Promise<void> {
    await this.put(
      riders.map(({ id, zone, lat, lng, status, activeOrders, capacity }) => [
        riderCacheKey(this.opts.prefix, id),
        { zone, lat, lng, status, activeOrders, capacity },
      ]),
    );
  }

  private async put(entries: readonly (readonly [string, Record<string, string | number>])[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [key, fields] of entries) {
      pipeline.hset(key, fields);
      pipeline.pexpire(key, this.opts.ttlMs);
    }
    for (const [error] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
    }
  }
}
