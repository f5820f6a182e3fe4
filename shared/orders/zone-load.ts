import { LRUCache } from 'lru-cache';
import type { Db } from '../db.ts';

export interface ZoneLoadFigures {
  readonly openOrders: number;
  readonly freeRiders: number;
}

/**
 * How busy a zone is (orders waiting for a rider, riders with a free slot), for the surge factor.
 * A second-old answer is good enough for pricing and saves two queries per order at peak;
 * concurrent askers for one zone share one pair of queries.
 */
export class ZoneLoad {
  private readonly cache: LRUCache<string, ZoneLoadFigures>;

  constructor(db: Db, opts: { ttlMs?: number } = {}) {
    this.cache = new LRUCache({
      max: 10_000,
      ttl: opts.ttlMs ?? 1000,
      fetchMethod: async (zoneId) => {
        const [orders, riders] = await Promise.all([
          db('orders').where({ zone_id: zoneId }).whereIn('status', ['CREATED', 'PRICED']).count({ n: '*' }).first(),
          db('riders')
            .where({ zone_id: zoneId, status: 'AVAILABLE' })
            .whereRaw('active_orders < capacity')
            .count({ n: '*' })
            .first(),
        ]);
        return { openOrders: Number(orders?.n ?? 0), freeRiders: Number(riders?.n ?? 0) };
      },
    });
  }

  async get(zoneId: string): Promise<ZoneLoadFigures> {
    return (await this.cache.fetch(zoneId)) ?? { openOrders: 0, freeRiders: 0 };
  }
}
