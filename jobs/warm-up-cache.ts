import { HotDataCache, type CachedMerchant, type CachedRider } from '../shared/cache/hot-data-cache.ts';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { MaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import { ACTIVE_STATUSES, readActiveOrdersAfter } from '../shared/orders/read-order.ts';
import { createOrderCache } from '../shared/orders/order-writer.ts';
import type { JobPayloads } from './payloads.ts';
import type { Redis } from '../shared/redis.ts';
import type { SwitchReader } from '../shared/switches/switches.ts';

/** Rows read from MySQL and written to Redis per round trip. */
export const WARM_UP_PAGE_SIZE = 5000;

export interface WarmUpProgress {
  /** Orders, merchants and riders loaded so far. */
  readonly loaded: number;
  /** How many there are to load, as counted at the start (raised if more turn up). */
  readonly total: number;
}

export interface WarmUpCacheDeps {
  readonly db: Db;
  /** The connection the cache's pipelines go over. */
  readonly redis: Redis;
  readonly config: Pick<Config, 'cachePrefix' | 'cacheTtlMs' | 'cacheFinalTtlMs'>;
  readonly logger: Logger;
  readonly metrics?: Pick<MaintenanceMetrics, 'warmupItems' | 'warmupSeconds'>;
  /** Told after every page; with it the run first counts what there is to load (for a progress bar). */
  readonly onProgress?: (progress: WarmUpProgress) => void;
  /** Stops the run between two pages. */
  readonly signal?: AbortSignal;
  /** Default WARM_UP_PAGE_SIZE */
  readonly pageSize?: number;
  /**
   * The fleet's switches: with `warm-up` off the run is skipped (logged, and said in its outcome).
   * The worker passes them; an operator's `cache:warm` does not (asked for, it runs).
   */
  readonly switches?: SwitchReader & { readonly settled: Promise<void> };
}

export interface WarmUpOutcome {
  /** Active orders loaded (sent to the compare-and-set). */
  readonly orders: number;
  /** Of those, how many were written: the others were cached at their version or a newer one already. */
  readonly ordersWritten: number;
  readonly merchants: number;
  readonly riders: number;
  readonly ms: number;
  /** Why nothing was loaded: the warm-up switch was off. */
  readonly skipped?: string;
}

/**
 * Preloads Redis with what the peak will read: every active order (not DELIVERED or CANCELLED)
 * into the order cache, every merchant and every rider's position, page by page (keyset on the
 * primary key, one pipelined round trip per page). Orders go through the cache's compare-and-set
 * with the epoch read before their page, so a warm-up racing with writers never takes a cached
 * version backwards, nor refills a Redis that lost everything meanwhile with what it read before.
 */
export async function warmUpCacheJob(payload: JobPayloads['cache.warm-up'], deps: WarmUpCacheDeps): Promise<WarmUpOutcome> {
  const started = performance.now();
  if (deps.switches) {
    await deps.switches.settled; // a worker that just started has read them (or knows Redis did not answer)
    if (!deps.switches.isOn('warm-up')) {
      const skipped = 'the warm-up switch is off';
      deps.logger.info({ reason: payload.reason, skipped }, `cache warm-up (${payload.reason}) skipped: ${skipped}`);
      return { orders: 0, ordersWritten: 0, merchants: 0, riders: 0, ms: Math.round(performance.now() - started), skipped };
    }
  }
  const { db, config } = deps;
  const pageSize = deps.pageSize ?? WARM_UP_PAGE_SIZE;
  const orderCache = createOrderCache(deps.redis, config);
  const hotData = new HotDataCache(deps.redis, { prefix: config.cachePrefix, ttlMs: config.cacheTtlMs });

  let loaded = 0;
  let total = deps.onProgress ? await countAll(db) : 0;
  const progressed = (count: number) => {
    loaded += count;
    total = Math.max(total, loaded);
    deps.onProgress?.({ loaded, total });
  };
  deps.onProgress?.({ loaded, total });

  let ordersWritten = 0;
  const orders = await forEachPage(
    async (afterId) => {
      const readStartedAt = performance.now();
      const epoch = await orderCache.epoch(); // before MySQL: see OrderCache.epoch
      return { epoch, readStartedAt, rows: await readActiveOrdersAfter(db, afterId, pageSize) };
    },
    ({ rows }) => rows.map((record) => record.order.id),
    async ({ epoch, readStartedAt, rows }) => {
      ordersWritten += await orderCache.fillMany(rows, epoch, readStartedAt);
      deps.metrics?.warmupItems.inc({ kind: 'order' }, rows.length);
      progressed(rows.length);
    },
    { pageSize, signal: deps.signal },
  );

  const merchants = await forEachPage(
    async (afterId) => {
      const rows = await db('merchants').select('id', 'name', 'zone_id', 'lat', 'lng').where('id', '>', afterId).orderBy('id').limit(pageSize);
      return rows.map(
        (row): CachedMerchant => ({ id: String(row.id), zone: String(row.zone_id), lat: Number(row.lat), lng: Number(row.lng), name: String(row.name) }),
      );
    },
    (rows) => rows.map((merchant) => merchant.id),
    async (rows) => {
      await hotData.putMerchants(rows);
      deps.metrics?.warmupItems.inc({ kind: 'merchant' }, rows.length);
      progressed(rows.length);
    },
    { pageSize, signal: deps.signal },
  );

  const riders = await forEachPage(
    async (afterId) => {
      const rows = await db('riders')
        .select('id', 'zone_id', 'lat', 'lng', 'status', 'active_orders', 'capacity')
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(pageSize);
      return rows.map(
        (row): CachedRider => ({
          id: String(row.id),
          zone: String(row.zone_id),
          lat: Number(row.lat),
          lng: Number(row.lng),
          status: String(row.status),
          activeOrders: Number(row.active_orders),
          capacity: Number(row.capacity),
        }),
      );
    },
    (rows) => rows.map((rider) => rider.id),
    async (rows) => {
      await hotData.putRiders(rows);
      deps.metrics?.warmupItems.inc({ kind: 'rider' }, rows.length);
      progressed(rows.length);
    },
    { pageSize, signal: deps.signal },
  );

  if (total !== loaded) deps.onProgress?.({ loaded, total: loaded }); // fewer than counted: some finished meanwhile
  const ms = Math.round(performance.now() - started);
  deps.metrics?.warmupSeconds.observe({ reason: payload.reason }, ms / 1000);
  const outcome = { orders, ordersWritten, merchants, riders, ms };
  deps.logger.info({ reason: payload.reason, ...outcome }, `cache warm-up (${payload.reason}): ${orders} orders, ${merchants} merchants, ${riders} riders in ${ms} ms`);
  return outcome;
}

/**
 * A keyset scan: reads a page after the last id of the one before, hands it on, and stops at the
 * first short page. Resolves with how many rows it handed on.
 */
async function forEachPage<P>(
  read: (afterId: string) => Promise<P>,
  idsOf: (page: P) => readonly string[],
  handle: (page: P) => Promise<void>,
  opts: { pageSize: number; signal: AbortSignal | undefined },
): Promise<number> {
  let afterId = '0';
  let count = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    const page = await read(afterId);
    const ids = idsOf(page);
    if (ids.length > 0) await handle(page);
    count += ids.length;
    if (ids.length < opts.pageSize) return count;
    afterId = ids[ids.length - 1]!;
  }
}

async function countAll(db: Db): Promise<number> {
  const [orders, merchants, riders] = await Promise.all([
    db('orders').whereIn('status', ACTIVE_STATUSES).count({ n: '*' }).first(),
    db('merchants').count({ n: '*' }).first(),
    db('riders').count({ n: '*' }).first(),
  ]);
  return [orders, merchants, riders].reduce((sum, row) => sum + Number(row?.n ?? 0), 0);
}
