/** The reads bench's settings (flag, environment variable, default: `npm run bench:reads -- --help`), names and bounds. */
import { databaseName } from '../../shared/db.ts';
import { choices, int, parseSettings, text } from '../lib/settings.ts';

// Settings

/**
 * cached, not-modified, tracking, healthz: the web process (ORDER_CACHE=on), each its own process
 * under its own request; uncached: ORDER_CACHE=off; hello: a bare Fastify hello-world in a process of
 * its own (the ceiling every ratio is taken against); hello-order: the same answering an order's bytes;
 * hello-twin: a second bare hello-world, measured as any server is (its ratio shows the run's own noise).
 */
export type ServerName = 'cached' | 'not-modified' | 'tracking' | 'healthz' | 'uncached' | 'hello' | 'hello-order' | 'hello-twin';
export const ALL_SERVERS: readonly ServerName[] = ['cached', 'not-modified', 'tracking', 'healthz', 'uncached', 'hello', 'hello-order', 'hello-twin'];

export const settings = parseSettings('reads', 'Cached order reads, 304s, the tracking view and /healthz against uncached and a bare hello-world, the warm-up of 100,000 orders, the cold-key stampede.', {
  seconds: int('--seconds', 'BENCH_DURATION_S', 10, 1, 600, 'measured load per server, s (cut into --rounds turns)'),
  rounds: int('--rounds', 'BENCH_ROUNDS', 4, 1, 20, 'turns the servers take (a burst of other work falls on all alike)'),
  connections: int('--connections', 'BENCH_CONNECTIONS', 64, 1, 1024, 'load generator connections'),
  wrkSeconds: int('--wrk-seconds', 'BENCH_WRK_SECONDS', 24, 0, 600, 'per server for the wrk check (one warm order; 0: left out), s, cut into --wrk-rounds turns'),
  wrkRounds: int('--wrk-rounds', 'BENCH_WRK_ROUNDS', 6, 1, 40, "turns in the wrk check; each ratio is the median over them of a turn against the hello-world's turns just around it"),
  warmup: int('--warmup', 'BENCH_WARMUP_S', 2, 0, 60, 'unmeasured load per server first, s'),
  sliceWarmup: int('--slice-warmup', 'BENCH_SLICE_WARMUP_S', 2, 0, 60, "each turn's unmeasured lead-in, s (a web server's L1 copies expire while it waits its turn: the figures are of a warm cache)"),
  orders: int('--orders', 'BENCH_ORDERS', 100_000, 1_000, 1_000_000, 'active orders in the table (a quarter as many finished ones too)'),
  hotOrders: int('--hot-orders', 'BENCH_HOT_ORDERS', 1_000, 1, 100_000, 'the hot set the GETs draw from'),
  stampede: int('--stampede', 'BENCH_STAMPEDE', 1_000, 2, 5_000, 'concurrent readers of one cold key'),
  warmupPage: int('--warmup-page', 'BENCH_WARMUP_PAGE', 5_000, 100, 50_000, "the cache warm-up's page size"),
  servers: choices('--servers', 'BENCH_SERVERS', ALL_SERVERS, 'servers to run'),
  // Its own variable: the intake bench's BENCH_MYSQL_URL must never make this bench drop that database.
  mysqlUrl: text('--mysql-url', 'BENCH_READS_MYSQL_URL', 'mysql://root@127.0.0.1:3306/courier_bench_reads', 'the bench database (dropped, created and migrated; dropped at the end)'),
  redisUrl: text('--redis-url', 'BENCH_REDIS_URL', 'redis://127.0.0.1:6379', 'Redis (the bench deletes its own keys)'),
});
export const CHANGED = settings.changed;
export const DURATION_S = settings.values.seconds;
export const CONNECTIONS = settings.values.connections;
export const WARMUP_S = settings.values.warmup;
/** The wrk check's time per server (bench/reads/wrk-check.ts), in whole seconds per turn. */
export const WRK_SLICE_S = settings.values.wrkSeconds === 0 ? 0 : Math.max(1, Math.round(settings.values.wrkSeconds / settings.values.wrkRounds));
export const WRK_ROUNDS = settings.values.wrkRounds;
/**
 * Each turn's load begins with this much that is not measured: the hot set's L1 copies live
 * L1_TTL_MS, less than the other servers' turns, so a turn would otherwise begin with a miss per hot
 * order (~3% of a turn's reads, each costing many hits). The issue measures reads of a warm order;
 * misses are the uncached server's figures and the stampede's. Two L1 lives: the copies the lead-in
 * loads together are refreshed together once, under its load, before the turn is measured.
 */
export const SLICE_WARMUP_S = settings.values.sliceWarmup;
/** Each server's DURATION_S is cut into this many slices, the servers taking turns (see below). */
export const ROUNDS = settings.values.rounds;
export const SLICE_S = DURATION_S / ROUNDS;
export const ORDER_COUNT = settings.values.orders;
export const HOT_ORDERS = Math.min(settings.values.hotOrders, ORDER_COUNT - 10);
export const STAMPEDE = settings.values.stampede;
export const WARMUP_PAGE = settings.values.warmupPage;
export const SERVERS = settings.values.servers;
export const REDIS_URL = settings.values.redisUrl;
export const MYSQL_URL = settings.values.mysqlUrl;
if (!/^courier_bench_reads/.test(databaseName(MYSQL_URL))) {
  throw new Error(`--mysql-url must name a database starting with courier_bench_reads (it is dropped), got "${databaseName(MYSQL_URL)}"`);
}
export const CACHE_PREFIX = 'courier-bench-reads';
export const QUEUE_PREFIX = '{courier-bench-reads}';
export const MERCHANT = { id: '9001', name: 'Reads Bench Noodles', zone_id: 'bench-reads', lat: 31.2397, lng: 121.4998, address: '1 Bench Rd' };
export const LOAD_SEED = 0x5eed;

/** Bounds: nothing here waits for ever. */
export const START_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 20_000;
export const LOAD_DRAIN_BOUND_S = 15;
export const HTTP_TIMEOUT_MS = 15_000;

/** Issue 14: each figure over the bare hello-world's req/s, measured in the same run. */
export const TARGET = {
  minCachedOverUncached: 3,
  minCachedOverHello: 0.7,
  minNotModifiedOverHello: 0.8,
  minTrackingOverHello: 0.5,
  minHealthzOverHello: 0.8,
  maxWarmupS: 5,
  stampedeQueries: 1,
} as const;

/** What hello-order answers (one hot order's JSON as Courier serialises it) and the shared Redis's pid: set by main. */
export const shared = { helloOrderBody: '', redisPid: null as number | null };
