/**
 * The reads bench's data: one API client, one merchant, --orders active orders (CREATED, PRICED,
 * DISPATCHED, PICKED_UP, a few *_FAILED) and a quarter as many finished ones, interleaved through
 * the table, inserted in multi-row batches, with 30 riders and the dispatched orders' DISPATCHED
 * events (the tracking view reads them); and its Redis keys.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig, type Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator, shardOf } from '../../shared/ids.ts';
import type { OrderStatus } from '../../shared/orders/status.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { prng } from '../lib/prng.ts';
import { ORDER_COUNT, REDIS_URL, MYSQL_URL, CACHE_PREFIX, QUEUE_PREFIX, MERCHANT } from './settings.ts';

/** The bench's client may go as fast as the load: the rate limiter's check runs (and costs what it costs), it never refuses. */
const BENCH_RATE = { ratePerSecond: MAX_RATE_PER_SECOND };

// The data: one client, one merchant, ORDER_COUNT active orders and a quarter as many finished ones

/** [status, share of its group in %, version]. Active: what the warm-up loads; finished: what it skips. */
export const ACTIVE_MIX: readonly (readonly [OrderStatus, number, number])[] = [
  ['CREATED', 12, 1],
  ['PRICED', 18, 2],
  ['DISPATCHED', 43, 3],
  ['PICKED_UP', 25, 4],
  ['PRICING_FAILED', 1, 2],
  ['DISPATCH_FAILED', 1, 3],
];
export const FINISHED_MIX: readonly (readonly [OrderStatus, number, number])[] = [
  ['DELIVERED', 75, 5],
  ['CANCELLED', 25, 2],
];
export const FINISHED_COUNT = Math.round(ORDER_COUNT / 4);

export interface Seeded {
  readonly db: Db;
  readonly config: Config;
  readonly apiKey: string;
  readonly clientId: string;
  /** The active orders' ids, ascending (the warm-up loads these). */
  readonly activeIds: readonly string[];
  readonly finishedIds: readonly string[];
  /** What each order is: for the answers check. */
  readonly expected: ReadonlyMap<string, { status: OrderStatus; version: number }>;
  readonly statusCounts: Record<string, number>;
  readonly rows: number;
  readonly insertS: number;
}

/** Exactly `count` statuses shared as the mix says (the last takes the remainder). */
export function statusesOf(mix: readonly (readonly [OrderStatus, number, number])[], count: number): (readonly [OrderStatus, number])[] {
  const out: (readonly [OrderStatus, number])[] = [];
  let left = count;
  mix.forEach(([status, share, version], i) => {
    const n = i === mix.length - 1 ? left : Math.round((count * share) / 100);
    for (let k = 0; k < n; k++) out.push([status, version]);
    left -= n;
  });
  return out;
}

export async function seedDatabase(): Promise<Seeded> {
  const config = loadConfig({ MYSQL_URL, REDIS_URL, CACHE_PREFIX, DB_TIMEOUT_MS: '10000' });
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`bench: database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const ids = new IdGenerator(63);
  await db('merchants').insert(MERCHANT);
  const client = await createApiClient(db, ids, `reads bench ${new Date().toISOString()}`, BENCH_RATE);

  // Active and finished orders interleaved at random through the table (ids are time-ordered).
  const random = prng(42);
  const statuses = [...statusesOf(ACTIVE_MIX, ORDER_COUNT), ...statusesOf(FINISHED_MIX, FINISHED_COUNT)];
  for (let i = statuses.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [statuses[i], statuses[j]] = [statuses[j]!, statuses[i]!];
  }
  const shard = shardOf(MERCHANT.id, 64);
  const expected = new Map<string, { status: OrderStatus; version: number }>();
  const activeIds: string[] = [];
  const finishedIds: string[] = [];
  const statusCounts: Record<string, number> = {};
  const rows: Record<string, unknown>[] = [];
  const itemsPool = [
    { sku: 'NDL-1', name: 'Beef noodles', qty: 2, priceCents: 3800 },
    { sku: 'TEA-2', name: 'Jasmine tea', qty: 1, priceCents: 1200 },
    { sku: 'DMP-3', name: 'Pork dumplings', qty: 12, priceCents: 2600 },
  ];
  statuses.forEach(([status, version], i) => {
    const priced = status !== 'CREATED' && status !== 'PRICING_FAILED';
    const dispatched = ['DISPATCHED', 'PICKED_UP', 'DELIVERED'].includes(status);
    const id = ids.next(shard);
    expected.set(id, { status, version });
    (FINISHED_MIX.some(([s]) => s === status) ? finishedIds : activeIds).push(id);
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    rows.push({
      id,
      client_id: client.id,
      idempotency_key: `reads-bench-${i}`,
      request_hash: i.toString(16).padStart(64, '0'),
      merchant_id: MERCHANT.id,
      zone_id: MERCHANT.zone_id,
      status,
      version,
      attempts: status === 'CREATED' ? 0 : 1,
      last_error: status.endsWith('_FAILED') ? 'bench: no free rider within reach' : null,
      pickup_lat: MERCHANT.lat,
      pickup_lng: MERCHANT.lng,
      dropoff_lat: (31.2 + random() * 0.08).toFixed(6),
      dropoff_lng: (121.44 + random() * 0.08).toFixed(6),
      dropoff_address: `${1 + (i % 999)} Century Avenue, Pudong, Shanghai`,
      dropoff_phone: `+86 138 ${String(i).padStart(8, '0')}`,
      items: JSON.stringify(itemsPool.slice(0, 1 + (i % 3))),
      note: i % 4 === 0 ? 'ring twice' : null,
      fee_cents: priced ? 500 + Math.floor(random() * 1500) : null,
      eta_seconds: priced ? 600 + Math.floor(random() * 1800) : null,
      rider_id: dispatched ? String(3000 + (i % 30)) : null,
    });
  });
  // Multi-row INSERTs of 2,000 rows (48,000 placeholders, under MySQL's 65,535), two at a time.
  const t0 = performance.now();
  const BATCH = 2_000;
  let next = 0;
  let done = 0;
  const writer = async () => {
    while (next < rows.length) {
      const batch = rows.slice(next, next + BATCH);
      next += BATCH;
      await db('orders').insert(batch);
      done += batch.length;
      progress(`  inserting orders: ${fmt(done)} / ${fmt(rows.length)}`, false);
    }
  };
  await Promise.all([writer(), writer()]);
  // What the tracking view reads besides the order: the riders' positions, and each dispatched
  // order's DISPATCHED event (its ETA counts from it).
  await db('riders').insert(
    Array.from({ length: 30 }, (_, k) => ({ id: String(3000 + k), name: `Bench rider ${k}`, zone_id: MERCHANT.zone_id, lat: (31.21 + k * 0.002).toFixed(6), lng: (121.45 + k * 0.002).toFixed(6) })),
  );
  const events = rows
    .filter((row) => row.rider_id !== null)
    .map((row) => ({ order_id: row.id, from_status: 'PRICED', to_status: 'DISPATCHED', version: 3, actor: 'bench', created_at: new Date(Date.now() - 60_000 - Math.floor(random() * 600_000)) }));
  for (let i = 0; i < events.length; i += BATCH) await db('order_events').insert(events.slice(i, i + BATCH));
  const insertS = (performance.now() - t0) / 1000;
  log(
    `bench: inserted ${fmt(rows.length)} orders in ${fmt(insertS, 2)} s, one client, merchant ${MERCHANT.id}: ${fmt(ORDER_COUNT)} active ` +
      `(${ACTIVE_MIX.map(([s]) => `${s} ${fmt(statusCounts[s] ?? 0)}`).join(', ')}) and ${fmt(FINISHED_COUNT)} finished ` +
      `(${FINISHED_MIX.map(([s]) => `${s} ${fmt(statusCounts[s] ?? 0)}`).join(', ')}), interleaved`,
  );
  return { db, config, apiKey: client.key, clientId: client.id, activeIds, finishedIds, expected, statusCounts, rows: rows.length, insertS };
}

// ---------------------------------------------------------------------------------------------
// Redis: the bench's cache prefix only

export async function deleteCacheKeys(redis: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export async function deleteBenchKeys(redis: Redis): Promise<number> {
  return (await deleteCacheKeys(redis, `${CACHE_PREFIX}:*`)) + (await deleteCacheKeys(redis, `${QUEUE_PREFIX}:*`));
}

// ---------------------------------------------------------------------------------------------
