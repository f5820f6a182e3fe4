/** The recovery bench's settings (flag, environment variable, default: `npm run bench:recovery -- --help`), names, mix and bounds. */
import { databaseName } from '../../shared/db.ts';
import { choices, int, ints, parseSettings, text } from '../lib/settings.ts';

export const settings = parseSettings('recovery', 'Part 1: 100,000 failed or orphaned orders re-driven by a worker process; part 2: a FLUSHALL under load.', {
  orders: int('--orders', 'BENCH_RECOVERY_ORDERS', 100_000, 10, 1_000_000, 'part 1: orders seeded in failed or orphaned states'),
  baselineOrders: int('--baseline-orders', 'BENCH_BASELINE_ORDERS', 3000, 0, 100_000, 'part 1: orders per baseline run (one order per write, one job per order); 0 = none'),
  baselineConcurrency: ints('--baseline-concurrency', 'BENCH_BASELINE_CONCURRENCY', [1, 32], 1, 256, 'part 1: orders in flight in each baseline run'),
  flushOrders: int('--flush-orders', 'BENCH_FLUSH_ORDERS', 3000, 100, 100_000, 'part 2: orders posted around the FLUSHALL'),
  flushRate: int('--flush-rate', 'BENCH_FLUSH_RATE', 0, 0, 5000, 'part 2: their rate, orders/s (0 = half the capacity measured by the calibration)'),
  calibrateOrders: int('--calibrate-orders', 'BENCH_CALIBRATE_ORDERS', 2000, 100, 20_000, 'part 2: orders of the capacity calibration'),
  calibrateRate: int('--calibrate-rate', 'BENCH_CALIBRATE_RATE', 400, 10, 5000, 'part 2: their rate'),
  parts: choices('--parts', 'BENCH_PARTS', ['1', '2'] as const, 'parts to run'),
  logLevel: text('--log-level', 'BENCH_LOG_LEVEL', 'warn', "part 2: the fleet's LOG_LEVEL"),
  mysqlUrl: text('--mysql-url', 'BENCH_MYSQL_URL', 'mysql://root@127.0.0.1:3306/courier_bench_recovery', 'part 1 database (part 2 adds _flush); dropped, created and migrated; dropped at the end'),
});
export const CHANGED = settings.changed;
export const ORDERS = settings.values.orders;
export const BASELINE_ORDERS = settings.values.baselineOrders;
export const BASELINE_CONCURRENCIES = settings.values.baselineConcurrency;
export const FLUSH_ORDERS = settings.values.flushOrders;
export const FLUSH_RATE_SETTING = settings.values.flushRate;
export const CALIBRATE_ORDERS = settings.values.calibrateOrders;
export const CALIBRATE_RATE = settings.values.calibrateRate;
export const PARTS = new Set(settings.values.parts);
export const LOG_LEVEL = settings.values.logLevel;

export const MYSQL_URL_1 = settings.values.mysqlUrl;
export const MYSQL_URL_2 = withDatabase(MYSQL_URL_1, `${databaseName(MYSQL_URL_1)}_flush`);
export const PREFIX_1 = '{courier-bench-recovery}';
export const CACHE_PREFIX_1 = 'courier-bench-recovery:cache';
export const PREFIX_2 = '{courier-bench-flush}';
export const CACHE_PREFIX_2 = 'courier-bench-flush:cache';

/**
 * The seeded mix (part 1 and the baseline); the rest are orphaned CREATED orders, of which
 * `unnamedOrphans` are rows from before batches (no price_job_id) and the others name a price
 * batch of ORPHAN_BATCH orders that Redis lost.
 */
export const MIX = { pricingFailed: 0.4, dispatchFailed: 0.4, escalatePricing: 0.02, escalateDispatch: 0.05, unnamedOrphans: 0.1 } as const;
/** Orders per lost price batch of the seeded orphans (PRICE_BATCH_MAX's default). */
export const ORPHAN_BATCH = 100;
export const SEED_CHUNK = 2000;
export const ZONES = 10;
export const RIDERS_PER_ZONE = 30;
export const RIDER_CAPACITY = 10;
export const RIDER_RESET_MS = 200;

/** Bounds: nothing waits for ever. */
export const START_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 20_000;
export const PART1_BOUND_S = 300;
export const CALIBRATE_BOUND_S = 120;
export const PART2_DRAIN_BOUND_S = 180;
export const TOTAL_BOUND_S = 25 * 60;

export const TARGET_S = 60;

export function withDatabase(mysqlUrl: string, name: string): string {
  const url = new URL(mysqlUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
