/** The pipeline bench's settings (flag, environment variable, default): `npm run bench:pipeline -- --help`. */
import { int, ints, onOff, parseSettings, text } from '../lib/settings.ts';

export const settings = parseSettings('pipeline', 'Capacity search: the fleet as the Procfile runs it, offered rising rates in steps; the sustainable rate, round trips per order, Redis memory, exactly-once checks.', {
  steps: ints('--steps', 'BENCH_STEPS', [250, 500, 1000, 1500, 2000, 3000, 4000], 1, 100_000, 'offered rates, orders/s, one step each, in this order'),
  warmupSeconds: int('--warmup-seconds', 'BENCH_WARMUP_S', 10, 0, 120, 'an unmeasured load at half the first step before the search (JIT, pools, connections), then a drain; 0 = none'),
  stepSeconds: int('--step-seconds', 'BENCH_STEP_S', 20, 3, 600, 'length of each step (the issue asks at least 20 s)'),
  beyondKnee: int('--beyond-knee', 'BENCH_BEYOND_KNEE', 1, 0, 20, 'steps still run after the first one that is not sustainable (the curve past the knee)'),
  drainBoundS: int('--drain-bound', 'BENCH_DRAIN_BOUND_S', 240, 10, 3600, 'longest wait for the backlog to drain after the last step, s'),
  memoryOrders: int('--memory-orders', 'BENCH_MEMORY_ORDERS', 100_000, 0, 2_000_000, 'orders processed end to end (nobody reading) before Redis memory growth is judged; the steps count, the rest is posted at the sustainable rate; 0 = no top-up'),
  memoryBoundS: int('--memory-bound', 'BENCH_MEMORY_BOUND_S', 420, 10, 3600, 'longest the memory top-up (load and drain) may take, s'),
  readOrders: int('--read-orders', 'BENCH_READ_ORDERS', 10_000, 0, 100_000, 'the fixed set of accepted orders a reader polls with GET /v1/orders/:id in the read phase; 0 = no read phase'),
  readSeconds: int('--read-seconds', 'BENCH_READ_S', 30, 5, 600, 'length of the read phase (writes go on at the sustainable rate)'),
  readRate: int('--read-rate', 'BENCH_READ_RATE', 1000, 10, 50_000, 'GETs per second the reader sends'),
  connections: int('--connections', 'BENCH_CONNECTIONS', 256, 1, 2048, 'load generator connections (at most the rate)'),
  zones: int('--zones', 'BENCH_ZONES', 10, 1, 99, 'bench zones, one merchant each'),
  ridersPerZone: int('--riders-per-zone', 'BENCH_RIDERS_PER_ZONE', 30, 1, 1000, 'riders per zone'),
  riderCapacity: int('--rider-capacity', 'BENCH_RIDER_CAPACITY', 10, 1, 1000, "a rider's capacity"),
  riderResetMs: int('--rider-reset-ms', 'BENCH_RIDER_RESET_MS', 200, 10, 60_000, "the rider simulator frees every rider's slots this often (standing in for deliveries)"),
  privateRedis: onOff('--private-redis', 'BENCH_PRIVATE_REDIS', true, "run on a redis-server of the bench's own (its memory, commands and CPU are the fleet's alone); off: the shared BENCH_REDIS_URL under the bench's prefixes"),
  redisUrl: text('--redis-url', 'BENCH_REDIS_URL', 'redis://127.0.0.1:6379', 'the shared Redis (with --private-redis off)'),
  mysqlUrl: text('--mysql-url', 'BENCH_MYSQL_URL', 'mysql://root@127.0.0.1:3306/courier_bench_pipeline', 'the bench database (dropped, created and migrated; dropped again at the end)'),
  logLevel: text('--log-level', 'BENCH_LOG_LEVEL', 'warn', "the fleet's LOG_LEVEL"),
  keepDatabase: onOff('--keep-database', 'BENCH_KEEP_DATABASE', false, 'keep the bench database after the run, for a look'),
});

export type PipelineSettings = typeof settings.values;

/** The targets the bench reports against (issue 10). */
export const TARGETS = {
  maxCpuMsPerOrder: 1.5,
  minSustainableRate: 1000,
  maxP99Ms: 2000,
  maxRedisGrowthBytes: 20 * 1024 * 1024,
  redisAfterOrders: 100_000,
} as const;

/**
 * Courier settings the bench gives the fleet unless the environment does: none, the fleet runs on
 * Courier's defaults as the Procfile does (DISPATCH_WINDOW_MS and the rest pass through from the
 * environment).
 */
export const FLEET_DEFAULTS: NodeJS.ProcessEnv = {};
