/**
 * Pipeline bench: `npm run bench:pipeline`.
 *
 * Posts orders through the intake at a fixed rate and measures, in the same run, the whole
 * pipeline: orders/s reaching DISPATCHED, latency from the 202 to DISPATCHED, the backlog over
 * time, Redis memory and the RSS of the fleet, against BullMQ's no-op ceiling on this machine.
 *
 *   0. A dedicated database (courier_bench_pipeline: dropped, created and migrated each run) and
 *      queue prefix ({courier-bench-pipe}: its keys deleted with SCAN + DEL before and after the
 *      run, never FLUSHALL). Bench-only data: BENCH_ZONES zones, one merchant and
 *      BENCH_RIDERS_PER_ZONE riders of capacity BENCH_RIDER_CAPACITY each; an API client.
 *   1. The reference, on a quiet machine before the fleet starts: BullMQ's no-op ceiling, a Queue
 *      and a Worker with an empty processor in this process (concurrency = ORDER_WORKER_CONCURRENCY,
 *      removeOnComplete): BENCH_NOOP_JOBS jobs added with addBulk (chunks of 1,000), then the time
 *      the worker takes to complete them.
 *   2. The fleet as separate processes, as the Procfile runs it (`node <file>`, plus
 *      a preload that stops each one if this bench dies): the dev provider, web, worker, notifier.
 *   3. The load: autocannon at a fixed overall rate (BENCH_RATE) with a unique Idempotency-Key per
 *      request and the merchant cycling over the bench merchants, for BENCH_DURATION_S. Every
 *      second: queue counts, orders by status, Redis used_memory, RSS of the fleet.
 *   4. The drain (bounded by BENCH_DRAIN_BOUND_S): until no order is CREATED or PRICED and both
 *      queues are empty. Then the figures, from MySQL (order_events and orders timestamps, both set
 *      by MySQL), Redis, /proc and the dev provider, PASS/FAIL per target, and
 *      bench/results/pipeline-latest.json.
 *
 * Riders: the dispatch cost matrix has one column per free slot of every free rider of the zone,
 * so riders of a huge capacity (enough for a whole run) would make every dispatch batch a matrix of
 * millions of columns. The riders are realistic instead (capacity 10) and a rider simulator in this
 * process stands in for deliveries: every BENCH_RIDER_RESET_MS it frees every rider's slots in one
 * UPDATE (bench-only; the orders stay DISPATCHED, which is where this bench measures).
 *
 * Exit code: 0 whatever PASS/FAIL says; 1 if the bench itself fails: a 202 that is not a row (an
 * order lost), a fleet process that dies, or a step that cannot run.
 *
 * Env: BENCH_RATE (1500 orders/s), BENCH_ORDERS (100000: sets the default duration),
 * BENCH_DURATION_S (BENCH_ORDERS / BENCH_RATE, at least 30), BENCH_CONNECTIONS (256),
 * BENCH_NOOP_JOBS (30000, 0 = skip), BENCH_DRAIN_BOUND_S (300), BENCH_ZONES (10),
 * BENCH_RIDERS_PER_ZONE (30), BENCH_RIDER_CAPACITY (10), BENCH_RIDER_RESET_MS (200),
 * BENCH_STAGGER (1: spread the connections' rate-limit seconds evenly; 0: autocannon's own, which
 * sends each second's requests in a burst at its start), BENCH_LOG_LEVEL (warn), BENCH_CPU_PROF_DIR (write
 * a V8 CPU profile of each fleet process there; summarise one with bench/profile-summary.ts),
 * BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306/courier_bench_pipeline), BENCH_REDIS_URL
 * (redis://127.0.0.1:6379). Courier's own settings (DISPATCH_WINDOW_MS, default 200 here;
 * ORDER_WORKER_CONCURRENCY, NOTIFIER_CONCURRENCY, CPU_THREADS, ...) pass through to the fleet.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { databaseName, type Db } from '../shared/db.ts';
import { IdGenerator } from '../shared/ids.ts';
import { ORDER_STATUSES } from '../shared/orders/status.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { openBenchDatabase } from './lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders } from './lib/bench-zones.ts';
import { backlogOf, queueCounts, type QueueCounts } from './lib/queue-counts.ts';
import { benchFleetEnv, type BenchProcess, type Exit, exitNow, httpOk, runBench, startBenchProcess, stopBenchProcess } from './lib/child-processes.ts';
import { benchMysqlUrl, intEnv, REDIS_URL } from './lib/env.ts';
import { intakeBatchesBetween, scrapeIntakeMetrics } from './lib/intake-metrics.ts';
import { RiderSimulator } from './lib/rider-simulator.ts';
import { countWarning } from './lib/warnings.ts';
import { fmt, log, printTable, progress } from './lib/log.ts';
import { LOAD_DRAIN_BOUND_S, newLoadCounters, runOrderLoad } from './lib/order-load.ts';
import { summaryHead, writeResultsFile } from './lib/results-file.ts';
import { pidsNamed, readMachineCpuMs, readProcCpuMs, readRssBytes, sumCpuMs } from './proc-stats.ts';
import { summaryWithSeriesJson, type SeriesTable } from './sample-table.ts';

// ---------------------------------------------------------------------------------------------
// Settings

const MIN_DURATION_S = 30;
const RATE = intEnv('BENCH_RATE', 1500, 1, 100_000);
const ORDERS = intEnv('BENCH_ORDERS', 100_000, 1, 10_000_000);
const DURATION_S = intEnv('BENCH_DURATION_S', Math.max(MIN_DURATION_S, Math.ceil(ORDERS / RATE)), 1, 3600);
/**
 * autocannon's rate is per connection and per second, with no catching up: a connection that cannot
 * make its share of requests in its second (its latencies add up to more than a second) loses the
 * rest. 256 connections ask about 6 requests per second each at 1,500/s, which a connection keeps up
 * with while the intake answers within ~150 ms (the fleet starves the web process of CPU here).
 */
const CONNECTIONS = Math.min(intEnv('BENCH_CONNECTIONS', 256, 1, 2048), RATE); // autocannon caps it at the rate too
const NOOP_JOBS = intEnv('BENCH_NOOP_JOBS', 30_000, 0, 1_000_000);
const DRAIN_BOUND_S = intEnv('BENCH_DRAIN_BOUND_S', 300, 5, 3600);
const ZONES = intEnv('BENCH_ZONES', 10, 1, 99);
const RIDERS_PER_ZONE = intEnv('BENCH_RIDERS_PER_ZONE', 30, 1, 1000);
const RIDER_CAPACITY = intEnv('BENCH_RIDER_CAPACITY', 10, 1, 1000);
const RIDER_RESET_MS = intEnv('BENCH_RIDER_RESET_MS', 200, 10, 60_000);
const STAGGER = (process.env.BENCH_STAGGER ?? '1') !== '0';
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'warn';
const MYSQL_URL = benchMysqlUrl('courier_bench_pipeline');
const QUEUE_PREFIX = '{courier-bench-pipe}';
/** The fleet's order cache and locks, apart from anyone else's: its memory is reported on its own, and it is deleted after the run. */
const CACHE_PREFIX = 'courier-bench-pipe-cache';
const NOOP_QUEUE = 'bench-noop';
const DISPATCH_WINDOW_MS = process.env.DISPATCH_WINDOW_MS || '200';

/** Bounds: nothing here waits for ever. */
const START_TIMEOUT_MS = 60_000;
const NOOP_BOUND_MS = 180_000;
const STOP_TIMEOUT_MS = 20_000;

const TARGET = { minOrdersPerSec: 1500, maxP99Ms: 2000, maxRedisGrowthBytes: 50 * 1024 * 1024, redisAfterOrders: 100_000 } as const;
/**
 * The end-to-end rate is judged on whole-run counts of a rate-limited load: a pipeline that keeps up
 * with 1,500/s offered dispatches 1,500/s give or take the load generator's second boundaries.
 */
const RATE_TOLERANCE = 0.005;

// ---------------------------------------------------------------------------------------------
// Output

const mb = (bytes: number | null | undefined, digits = 1) => (bytes === null || bytes === undefined ? 'n/a' : fmt(bytes / 1024 / 1024, digits));
/** A latency in ms; infinite ones are orders that were not dispatched by the end. */
const fmtMs = (ms: number) => (ms === Number.POSITIVE_INFINITY ? 'not dispatched by the end' : `${fmt(ms)} ms`);
const signedMb = (bytes: number) => `${bytes >= 0 ? '+' : '-'}${mb(Math.abs(bytes), 2)}`;

// ---------------------------------------------------------------------------------------------
// The fleet: each process in its own process group, none left behind (bench/lib/child-processes.ts)

type FleetName = 'provider' | 'web' | 'worker' | 'notifier';
const FLEET: readonly FleetName[] = ['provider', 'web', 'worker', 'notifier'];
const FLEET_FILES: Record<FleetName, string> = {
  provider: 'workers/dev-provider.ts',
  web: 'workers/web.ts',
  worker: 'workers/orders.ts',
  notifier: 'workers/notifier.ts',
};
/** The line each logs when ready (at info level; with LOG_LEVEL=warn the probes decide). */
const READY_LINES: Record<FleetName, RegExp> = {
  provider: /dev provider ready/,
  web: /web listening/,
  worker: /worker ready/,
  notifier: /notifier ready/,
};

interface FleetProcess extends BenchProcess {
  readonly name: FleetName;
  /** Log lines at warn or above (pino level >= 40). */
  warnings: number;
  /** The same, counted by cause: the message and the error's own text, numbers blanked. */
  readonly warningKinds: Map<string, number>;
}

const fleet = new Map<FleetName, FleetProcess>();
/** Set when a fleet process dies on its own: the bench stops. */
let fleetFailure: string | null = null;

async function startFleetProcess(name: FleetName, env: NodeJS.ProcessEnv, probe: () => Promise<boolean>): Promise<FleetProcess> {
  const proc = await startBenchProcess<{ name: FleetName; warnings: number; warningKinds: Map<string, number> }>(
    {
      name,
      file: FLEET_FILES[name],
      env,
      // Ready when it says so (LOG_LEVEL=info) or, with the quieter levels the bench uses, when a probe
      // from outside says so: the HTTP servers answer, the BullMQ workers are connected to their queue.
      readyLine: READY_LINES[name],
      probe,
      timeoutMs: START_TIMEOUT_MS,
      suppressedNote: `more output suppressed; ${name} keeps counting its warnings`,
      onLine: countWarning,
    },
    { name, warnings: 0, warningKinds: new Map() },
  );
  void proc.exited.then(({ code, signal }) => {
    if (proc.stopping) return;
    fleetFailure = `${name} (pid ${proc.pid}) exited on its own: code ${code}, signal ${signal}`;
    log(`bench: ${fleetFailure}\n${proc.output.slice(-20).join('\n')}`);
  });
  return proc;
}


// ---------------------------------------------------------------------------------------------
// Database, bench data and Redis keys

interface BenchData {
  readonly db: Db;
  readonly apiKey: string;
  readonly merchants: readonly { id: string; zoneId: string; lat: number; lng: number }[];
  readonly riders: number;
}

async function prepareDatabase(config: Config): Promise<BenchData> {
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`bench: database ${name} dropped, created and migrated (${migrations.length} migrations)`);

  const merchants = benchMerchants(ZONES);
  await insertMerchants(db, merchants);
  const riders = await insertRiders(db, merchants, RIDERS_PER_ZONE, RIDER_CAPACITY);
  const client = await createApiClient(db, new IdGenerator(config.nodeId), `pipeline bench ${new Date().toISOString()}`);
  return { db, apiKey: client.key, merchants, riders };
}

/** Deletes every key under the bench's prefixes (SCAN MATCH + DEL; never FLUSHALL: the Redis is shared). */
async function deleteBenchKeys(redis: Redis): Promise<number> {
  let deleted = 0;
  for (const prefix of [QUEUE_PREFIX, CACHE_PREFIX]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

/** The order cache's keys under the bench's cache prefix and their memory (MEMORY USAGE, pipelined per SCAN page). */
async function cacheKeysMemory(redis: Redis): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, page] = await redis.scan(cursor, 'MATCH', `${CACHE_PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of page) pipeline.call('MEMORY', 'USAGE', key);
    for (const [, size] of (await pipeline.exec()) ?? []) bytes += Number(size ?? 0);
    keys += page.length;
  } while (cursor !== '0');
  return { keys, bytes };
}

/** The keys under the bench prefix and the memory they take (MEMORY USAGE), largest first. */
async function benchKeysMemory(redis: Redis): Promise<{ keys: number; bytes: number; largest: { key: string; bytes: number }[] }> {
  let cursor = '0';
  const sizes: { key: string; bytes: number }[] = [];
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${QUEUE_PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const bytes = (await redis.call('MEMORY', 'USAGE', key)) as number | null;
      sizes.push({ key, bytes: Number(bytes ?? 0) });
    }
  } while (cursor !== '0');
  sizes.sort((a, b) => b.bytes - a.bytes);
  return { keys: sizes.length, bytes: sizes.reduce((s, k) => s + k.bytes, 0), largest: sizes.slice(0, 5) };
}

async function redisUsedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------------------------
// Phase 1: BullMQ's no-op ceiling

interface NoopFigures {
  readonly jobs: number;
  readonly concurrency: number;
  readonly addSeconds: number;
  readonly addJobsPerSec: number;
  readonly processSeconds: number;
  readonly jobsPerSec: number;
  readonly cpuPercent: { bench: number | null; redis: number | null };
}

async function measureNoopCeiling(concurrency: number): Promise<NoopFigures> {
  const queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const workerConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(NOOP_QUEUE, {
    connection: queueConnection,
    prefix: QUEUE_PREFIX,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    streams: { events: { maxLen: 10_000 } },
  });
  const worker = new Worker(NOOP_QUEUE, async () => undefined, {
    connection: workerConnection,
    prefix: QUEUE_PREFIX,
    concurrency,
    autorun: false,
  });
  try {
    await worker.waitUntilReady();
    const addStart = performance.now();
    for (let i = 0; i < NOOP_JOBS; i += 1000) {
      const n = Math.min(1000, NOOP_JOBS - i);
      await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { n: i + k } })));
      progress(`  [no-op] added ${fmt(i + n)} / ${fmt(NOOP_JOBS)} jobs`, false);
    }
    const addSeconds = (performance.now() - addStart) / 1000;

    let completed = 0;
    let failed = 0;
    const done = new Promise<void>((resolveDone) => {
      worker.on('completed', () => {
        completed += 1;
        if (completed + failed >= NOOP_JOBS) resolveDone();
      });
      worker.on('failed', () => {
        failed += 1;
        if (completed + failed >= NOOP_JOBS) resolveDone();
      });
    });
    const ticker = setInterval(() => progress(`  [no-op] ${fmt(completed)} / ${fmt(NOOP_JOBS)} jobs completed`, false), 500);
    const redisPids = pidsNamed(['redis-server']);
    const redisBefore = sumCpuMs(redisPids);
    const ownBefore = process.cpuUsage();
    const start = performance.now();
    void worker.run();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([done.then(() => 'done' as const), new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), NOOP_BOUND_MS)))]);
    const processSeconds = (performance.now() - start) / 1000;
    clearTimeout(timer);
    clearInterval(ticker);
    if (outcome === 'timeout') throw new Error(`the no-op worker did not finish ${fmt(NOOP_JOBS)} jobs within ${NOOP_BOUND_MS / 1000} s (${fmt(completed)} done)`);
    if (failed > 0) throw new Error(`${failed} no-op jobs failed`);
    const own = process.cpuUsage(ownBefore);
    const redisAfter = sumCpuMs(redisPids);
    return {
      jobs: NOOP_JOBS,
      concurrency,
      addSeconds,
      addJobsPerSec: NOOP_JOBS / addSeconds,
      processSeconds,
      jobsPerSec: NOOP_JOBS / processSeconds,
      cpuPercent: {
        bench: (own.user + own.system) / 1000 / 10 / processSeconds,
        redis: redisBefore === null || redisAfter === null ? null : (redisAfter - redisBefore) / 10 / processSeconds,
      },
    };
  } finally {
    await worker.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    queueConnection.disconnect();
    workerConnection.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// CPU per process (Linux /proc)

type CpuName = FleetName | 'mariadbd' | 'redis' | 'bench';
const CPU_NAMES: readonly CpuName[] = ['web', 'worker', 'notifier', 'provider', 'mariadbd', 'redis', 'bench'];

interface CpuSnapshot {
  readonly at: number;
  readonly ms: Record<CpuName, number | null>;
  readonly machine: { busyMs: number; totalMs: number } | null;
}

let serverPids: { mariadbd: number[]; redis: number[] } = { mariadbd: [], redis: [] };

function cpuSnapshot(): CpuSnapshot {
  const own = process.cpuUsage();
  const ms = {} as Record<CpuName, number | null>;
  for (const name of FLEET) {
    const proc = fleet.get(name);
    ms[name] = proc ? readProcCpuMs(proc.pid) : null;
  }
  ms.mariadbd = sumCpuMs(serverPids.mariadbd);
  ms.redis = sumCpuMs(serverPids.redis);
  ms.bench = (own.user + own.system) / 1000;
  return { at: performance.now(), ms, machine: readMachineCpuMs() };
}

interface CpuWindow {
  readonly seconds: number;
  /** CPU used in the window, in % of one core. */
  readonly percent: Record<CpuName, number | null>;
  readonly cpuMs: Record<CpuName, number | null>;
  /** The whole machine: busy % of all its cores together (100% = every core busy). */
  readonly machineBusyPercent: number | null;
}

function cpuWindow(a: CpuSnapshot, b: CpuSnapshot): CpuWindow {
  const seconds = (b.at - a.at) / 1000;
  const percent = {} as Record<CpuName, number | null>;
  const cpuMs = {} as Record<CpuName, number | null>;
  for (const name of CPU_NAMES) {
    const x = a.ms[name];
    const y = b.ms[name];
    cpuMs[name] = x === null || y === null ? null : y - x;
    percent[name] = x === null || y === null || seconds <= 0 ? null : (y - x) / 10 / seconds;
  }
  const machineBusyPercent =
    a.machine && b.machine && b.machine.totalMs > a.machine.totalMs
      ? (100 * (b.machine.busyMs - a.machine.busyMs)) / (b.machine.totalMs - a.machine.totalMs)
      : null;
  return { seconds, percent, cpuMs, machineBusyPercent };
}

// ---------------------------------------------------------------------------------------------
// Sampling once a second

interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly phase: 'load' | 'drain';
  /** 202 answers so far. */
  readonly accepted: number;
  readonly status: Record<string, number>;
  /** Orders accepted and not yet through the pipeline: CREATED + PRICED. */
  readonly open: number;
  readonly dispatched: number;
  readonly ordersQueue: QueueCounts;
  readonly dispatchQueue: QueueCounts;
  readonly notificationsQueue: QueueCounts;
  readonly redisUsedMemory: number;
  readonly rss: Record<FleetName, number | null>;
  /** Machine busy % (all cores) since the previous sample. */
  readonly machineBusyPercent: number | null;
  /** How long the sample's own queries took (the bench's observation cost), in ms. */
  readonly sampleMs: number;
}

async function statusCounts(db: Db): Promise<Record<string, number>> {
  const rows = (await db('orders').select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: number | string }[];
  const out: Record<string, number> = {};
  for (const row of rows) out[row.status] = Number(row.n);
  return out;
}

class Sampler {
  readonly samples: Sample[] = [];
  phase: 'load' | 'drain' = 'load';
  private stopped = false;
  private loop: Promise<void> | undefined;
  private lastMachine = readMachineCpuMs();

  private readonly deps: { db: Db; redis: Redis; ordersQueue: Queue; dispatchQueue: Queue; notificationsQueue: Queue; accepted: () => number; loadStart: number };
  private readonly onSample: (sample: Sample) => void;

  constructor(
    deps: { db: Db; redis: Redis; ordersQueue: Queue; dispatchQueue: Queue; notificationsQueue: Queue; accepted: () => number; loadStart: number },
    onSample: (sample: Sample) => void,
  ) {
    this.deps = deps;
    this.onSample = onSample;
  }

  start(): void {
    this.loop = (async () => {
      let tick = 1;
      while (!this.stopped) {
        const due = this.deps.loadStart + tick * 1000;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        if (this.stopped) break;
        try {
          const sample = await this.take();
          this.samples.push(sample);
          this.onSample(sample);
        } catch (error) {
          log(`  bench: a sample failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        // A slow sample skips the seconds it overran rather than piling up.
        tick = Math.max(tick + 1, Math.ceil((performance.now() - this.deps.loadStart) / 1000));
      }
    })();
  }

  async take(): Promise<Sample> {
    const { db, redis, ordersQueue, dispatchQueue, notificationsQueue } = this.deps;
    const started = performance.now();
    const [ordersCounts, dispatchCounts, notificationCounts, status, used] = await Promise.all([
      queueCounts(ordersQueue),
      queueCounts(dispatchQueue),
      queueCounts(notificationsQueue),
      statusCounts(db),
      redisUsedMemory(redis),
    ]);
    const sampleMs = performance.now() - started;
    const rss = {} as Record<FleetName, number | null>;
    for (const name of FLEET) {
      const proc = fleet.get(name);
      rss[name] = proc ? readRssBytes(proc.pid) : null;
    }
    const machine = readMachineCpuMs();
    const machineBusyPercent =
      machine && this.lastMachine && machine.totalMs > this.lastMachine.totalMs
        ? (100 * (machine.busyMs - this.lastMachine.busyMs)) / (machine.totalMs - this.lastMachine.totalMs)
        : null;
    this.lastMachine = machine;
    return {
      t: Math.round((performance.now() - this.deps.loadStart) / 100) / 10,
      phase: this.phase,
      accepted: this.deps.accepted(),
      status,
      open: (status.CREATED ?? 0) + (status.PRICED ?? 0),
      dispatched: status.DISPATCHED ?? 0,
      ordersQueue: ordersCounts,
      dispatchQueue: dispatchCounts,
      notificationsQueue: notificationCounts,
      redisUsedMemory: used,
      rss,
      machineBusyPercent,
      sampleMs,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}


// ---------------------------------------------------------------------------------------------
// Figures

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Growth {
  readonly firstThirdMean: number;
  readonly lastThirdMean: number;
  readonly max: number;
  /** Least-squares slope over the load, per second. */
  readonly slopePerSec: number;
  readonly tolerance: number;
  readonly grew: boolean;
}

/** Did a backlog grow over the load? Compares its mean in the last third with the first third. */
function growthOf(points: readonly { t: number; v: number }[], loadS: number, perSecondArrivals: number): Growth {
  const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const first = points.filter((p) => p.t <= loadS / 3).map((p) => p.v);
  const last = points.filter((p) => p.t >= (2 * loadS) / 3).map((p) => p.v);
  const firstThirdMean = mean(first);
  const lastThirdMean = mean(last);
  const n = points.length;
  const mt = mean(points.map((p) => p.t));
  const mv = mean(points.map((p) => p.v));
  const num = points.reduce((s, p) => s + (p.t - mt) * (p.v - mv), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  // Growth beyond noise: more than one second's arrivals, and more than half of where it was.
  const tolerance = Math.max(perSecondArrivals, 0.5 * (Number.isFinite(firstThirdMean) ? firstThirdMean : 0));
  return {
    firstThirdMean,
    lastThirdMean,
    max: n ? Math.max(...points.map((p) => p.v)) : NaN,
    slopePerSec: n > 1 && den > 0 ? num / den : NaN,
    tolerance,
    grew: !(lastThirdMean - firstThirdMean <= tolerance),
  };
}

/** The once-a-second series as a table (bench/results/pipeline-latest.json, key samples). */
function samplesTable(samples: readonly Sample[]): SeriesTable {
  const statuses = ORDER_STATUSES.filter((status) => samples.some((s) => (s.status[status] ?? 0) > 0));
  const queueColumns = (q: string) => ['wait', 'active', 'delayed', 'prioritized', 'failed'].map((k) => `${q}.${k}`);
  const queueValues = (q: QueueCounts) => [q.wait, q.active, q.delayed, q.prioritized, q.failed];
  return {
    columns: [
      't',
      'phase',
      'accepted202',
      ...statuses.map((s) => `orders.${s}`),
      ...queueColumns('ordersQueue'),
      ...queueColumns('dispatchQueue'),
      ...queueColumns('notificationsQueue'),
      'redisUsedMemory',
      ...FLEET.map((n) => `rss.${n}`),
      'machineBusyPercent',
      'sampleMs',
    ],
    rows: samples.map((s) => [
      s.t,
      s.phase,
      s.accepted,
      ...statuses.map((status) => s.status[status] ?? 0),
      ...queueValues(s.ordersQueue),
      ...queueValues(s.dispatchQueue),
      ...queueValues(s.notificationsQueue),
      s.redisUsedMemory,
      ...FLEET.map((n) => s.rss[n]),
      s.machineBusyPercent,
      s.sampleMs,
    ]),
  };
}

// ---------------------------------------------------------------------------------------------
// Main

function dumpOutput(): void {
  for (const proc of fleet.values()) {
    if (proc.output.length) log(`  [${proc.name}] last output:\n${proc.output.slice(-10).map((l) => `    ${l.slice(0, 300)}`).join('\n')}`);
  }
}

async function main(): Promise<number> {
  const bound =
    NOOP_BOUND_MS + 4 * START_TIMEOUT_MS + (DURATION_S + LOAD_DRAIN_BOUND_S + DRAIN_BOUND_S) * 1000 + 4 * STOP_TIMEOUT_MS + 180_000;
  const watchdog = setTimeout(() => {
    log(`bench: did not finish within its bound (${Math.round(bound / 1000)} s): giving up`);
    dumpOutput();
    void exitNow(1);
  }, bound);
  watchdog.unref();

  const benchConfig = loadConfig({ MYSQL_URL, REDIS_URL });
  const { env: fleetEnv, webUrl, providerUrl } = await benchFleetEnv({
    mysqlUrl: MYSQL_URL,
    redisUrl: REDIS_URL,
    queuePrefix: QUEUE_PREFIX,
    cachePrefix: CACHE_PREFIX,
    logLevel: LOG_LEVEL,
    extra: { DISPATCH_WINDOW_MS },
  });
  const fleetConfig = loadConfig(fleetEnv); // what the fleet will run with (and a bad value stops us here)
  serverPids = { mariadbd: pidsNamed(['mariadbd', 'mysqld']), redis: pidsNamed(['redis-server']) };

  log(
    `bench: pipeline; ${fmt(RATE)} orders/s for ${DURATION_S} s (${fmt(RATE * DURATION_S)} orders), ${CONNECTIONS} connections` +
      `${STAGGER ? ' (rate spread evenly over each second)' : ''}; node ${process.version}, ${cpus().length} CPUs ` +
      `(shared by the load generator, the fleet, MariaDB and Redis)`,
  );
  if (DURATION_S < MIN_DURATION_S) log(`bench: note: BENCH_DURATION_S=${DURATION_S} is under the ${MIN_DURATION_S} s the issue asks for`);
  log(
    `bench: fleet settings: DISPATCH_WINDOW_MS=${fleetConfig.dispatchWindowMs}, DISPATCH_BATCH_SIZE=${fleetConfig.dispatchBatchSize}, ` +
      `ORDER_WORKER_CONCURRENCY=${fleetConfig.orderWorkerConcurrency}, NOTIFIER_CONCURRENCY=${fleetConfig.notifierConcurrency}, ` +
      `CPU_THREADS=${fleetConfig.cpuThreads}, DB_POOL_MAX=${fleetConfig.dbPoolMax}, INTAKE_BATCH_MAX=${fleetConfig.intakeBatchMax}, ` +
      `INTAKE_BATCH_WAIT_MS=${fleetConfig.intakeBatchWaitMs}, INTAKE_MAX_IN_FLIGHT=${fleetConfig.intakeMaxInFlight}, LOG_LEVEL=${LOG_LEVEL}`,
  );

  // -- 0. database, bench data, Redis keys
  const data = await prepareDatabase(benchConfig);
  const { db } = data;
  log(
    `bench: bench-only data: ${ZONES} zones (bench-01..), one merchant each (${data.merchants[0]!.id}-${data.merchants.at(-1)!.id}), ` +
      `${RIDERS_PER_ZONE} riders x capacity ${RIDER_CAPACITY} per zone (${fmt(data.riders)} riders); a rider simulator frees every ` +
      `rider's slots every ${RIDER_RESET_MS} ms (UPDATE riders SET active_orders = 0), standing in for deliveries`,
  );
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const ordersQueue = new Queue(QUEUE_NAMES.orders, { connection: redis, prefix: QUEUE_PREFIX });
  const dispatchQueue = new Queue(QUEUE_NAMES.dispatch, { connection: redis, prefix: QUEUE_PREFIX });
  const notificationsQueue = new Queue(QUEUE_NAMES.notifications, { connection: redis, prefix: QUEUE_PREFIX });
  const deletedBefore = await deleteBenchKeys(redis);
  log(`bench: Redis keys under ${QUEUE_PREFIX}: ${fmt(deletedBefore)} deleted (SCAN + DEL)`);

  let sampler: Sampler | undefined;
  let riders: RiderSimulator | undefined;
  const exits: Partial<Record<FleetName, Exit & { forced: boolean; seconds: number }>> = {};
  const stopFleet = async (names: readonly FleetName[] = ['web', 'worker', 'notifier', 'provider']) => {
    if (names.every((name) => !fleet.has(name) || exits[name])) return;
    progress(`bench: stopping ${names.join(', ')} (SIGTERM)`, true);
    for (const name of names) {
      const proc = fleet.get(name);
      if (!proc || exits[name]) continue;
      const exit = await stopBenchProcess(proc, STOP_TIMEOUT_MS);
      exits[name] = exit;
      log(
        `  [${name}] pid ${proc.pid} exited: code ${exit.code}, signal ${exit.signal}, ${fmt(exit.seconds * 1000)} ms after SIGTERM` +
          `${exit.forced ? ' (killed after the bound)' : ''}; ${fmt(proc.warnings)} warning/error log lines in the run`,
      );
    }
  };

  try {
    // -- 1. the no-op ceiling, machine quiet
    let noop: NoopFigures | null = null;
    if (NOOP_JOBS > 0) {
      log(`\n== 1. reference: BullMQ no-op ceiling (${fmt(NOOP_JOBS)} jobs, concurrency ${fleetConfig.orderWorkerConcurrency}, empty processor, in this process)`);
      noop = await measureNoopCeiling(fleetConfig.orderWorkerConcurrency);
      log(
        `  addBulk: ${fmt(noop.jobs)} jobs in ${fmt(noop.addSeconds, 2)} s (${fmt(noop.addJobsPerSec)} jobs/s); ` +
          `worker: ${fmt(noop.jobs)} jobs in ${fmt(noop.processSeconds, 2)} s = ${fmt(noop.jobsPerSec)} jobs/s ` +
          `(CPU: bench ${fmt(noop.cpuPercent.bench)}%, redis ${fmt(noop.cpuPercent.redis)}% of one core)`,
      );
      await deleteBenchKeys(redis);
    }

    // -- 2. the fleet
    log('\n== 2. the fleet (one process each, node <file>)');
    const starts: [FleetName, () => Promise<boolean>][] = [
      ['provider', () => httpOk(`${providerUrl}/control`)],
      ['web', () => httpOk(`${webUrl}/readyz`)],
      ['worker', async () => (await ordersQueue.getWorkersCount()) >= 1],
      ['notifier', async () => (await notificationsQueue.getWorkersCount()) >= 1],
    ];
    const t0 = performance.now();
    const started = await Promise.allSettled(
      starts.map(async ([name, probe]) => {
        const proc = await startFleetProcess(name, { ...fleetEnv, NODE_ID: String(FLEET.indexOf(name) + 1) }, probe);
        fleet.set(name, proc);
        log(`  [${name}] ${FLEET_FILES[name]} ready: pid ${proc.pid}, ${fmt((performance.now() - proc.startMs) / 1000, 1)} s`);
        return proc;
      }),
    );
    const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    log(`  fleet ready in ${fmt((performance.now() - t0) / 1000, 1)} s: web ${webUrl}, dev provider ${providerUrl}`);

    // -- 3. the load
    const bodies = data.merchants.map((m) =>
      JSON.stringify({
        merchantId: m.id,
        dropoff: { lat: +(m.lat + 0.01).toFixed(6), lng: +(m.lng + 0.01).toFixed(6), address: '88 Century Ave', phone: '+8613800000000' },
        items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
        note: 'ring twice',
      }),
    );
    await sleep(1000); // let the fleet settle after its start
    const rssStart = {} as Record<FleetName, number | null>;
    for (const name of FLEET) rssStart[name] = readRssBytes(fleet.get(name)!.pid);
    const redisStart = await redisUsedMemory(redis);
    const benchKeysStart = await benchKeysMemory(redis);
    const metricsBefore = await scrapeIntakeMetrics(webUrl);
    log(
      `\n== 3. load: ${fmt(RATE)} orders/s for ${DURATION_S} s; Redis used_memory at start ${mb(redisStart)} MB ` +
        `(bench keys ${fmt(benchKeysStart.keys)}, ${mb(benchKeysStart.bytes, 2)} MB); RSS MB at start: ` +
        FLEET.map((n) => `${n} ${mb(rssStart[n])}`).join(', '),
    );

    const counters = newLoadCounters();
    const mysqlStart = ((await db.raw("SELECT DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f') AS t")) as [{ t: string }[]])[0][0]!.t;
    const loadStart = performance.now();
    let lastPrinted = -Infinity;
    let previous: Sample | undefined;
    const show = (s: Sample) => {
      const dt = previous ? s.t - previous.t : s.t;
      const dispatchedPerSec = previous && dt > 0 ? (s.dispatched - previous.dispatched) / dt : s.dispatched / Math.max(s.t, 0.001);
      const acceptedPerSec = previous && dt > 0 ? (s.accepted - previous.accepted) / dt : s.accepted / Math.max(s.t, 0.001);
      previous = s;
      const head = s.phase === 'load' ? `[load ${fmt(Math.min(s.t, DURATION_S))}/${DURATION_S} s]` : `[drain ${fmt(s.t - DURATION_S)} s]`;
      const o = s.ordersQueue;
      const d = s.dispatchQueue;
      const n = s.notificationsQueue;
      const force = s.t - lastPrinted >= 5;
      if (force) lastPrinted = s.t;
      progress(
        `  ${head} 202 ${fmt(s.accepted)} (${fmt(acceptedPerSec)}/s) | dispatched ${fmt(s.dispatched)} (${fmt(dispatchedPerSec)}/s) | ` +
          `open ${fmt(s.open)} (C ${fmt(s.status.CREATED ?? 0)} P ${fmt(s.status.PRICED ?? 0)}) | orders q w/a/d ${fmt(o.wait)}/${fmt(o.active)}/${fmt(o.delayed)} | dispatch q ${fmt(d.wait)}/${fmt(d.active)}/${fmt(d.delayed)} | ` +
          `notif q w/a/d ${fmt(n.wait)}/${fmt(n.active)}/${fmt(n.delayed)} | redis ${mb(s.redisUsedMemory)} MB | ` +
          `RSS web/worker/notifier ${mb(s.rss.web, 0)}/${mb(s.rss.worker, 0)}/${mb(s.rss.notifier, 0)} MB | cpu ${fmt(s.machineBusyPercent)}%`,
        force,
      );
    };
    sampler = new Sampler({ db, redis, ordersQueue, dispatchQueue, notificationsQueue, accepted: () => counters.status202, loadStart }, show);
    riders = new RiderSimulator(db, RIDER_RESET_MS);
    riders.start();
    sampler.start();
    const cpuLoadStart = cpuSnapshot();
    const run = await runOrderLoad({
      url: webUrl,
      apiKey: data.apiKey,
      keyPrefix: `pipe-${Date.now().toString(36)}`,
      bodies,
      connections: CONNECTIONS,
      seconds: DURATION_S,
      rate: { overall: RATE, stagger: STAGGER },
      collectIds: true,
      counters,
      startedAt: loadStart,
    });
    const cpuLoadEnd = cpuSnapshot();
    const metricsAfter = await scrapeIntakeMetrics(webUrl);
    sampler.phase = 'drain';
    const r = run.result;
    log(
      `  load done: ${fmt(run.responses)} responses in ${fmt(run.windowS, 2)} s (${fmt(run.responses / run.windowS)}/s), ${fmt(run.status202)} x 202, ` +
        `${fmt(r.non2xx)} non-2xx, ${fmt(r.errors)} errors, ${fmt(r.timeouts)} timeouts; intake latency p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, max ${r.latency.max} ms` +
        (run.drained ? '' : `; NOT drained: ${fmt(run.unanswered)} requests got no response`),
    );
    if (fleetFailure) throw new Error(fleetFailure);

    // -- 4. the drain
    log(`\n== 4. drain: until no order is CREATED or PRICED and both queues are empty (at most ${DRAIN_BOUND_S} s)`);
    const drainStart = performance.now();
    let drainedAll = false;
    while (performance.now() - drainStart < DRAIN_BOUND_S * 1000) {
      if (fleetFailure) throw new Error(fleetFailure);
      const last = sampler.samples.at(-1);
      if (last && last.phase === 'drain' && last.open === 0 && backlogOf(last.ordersQueue) === 0 && backlogOf(last.notificationsQueue) === 0) {
        drainedAll = true;
        break;
      }
      await sleep(250);
    }
    const drainS = (performance.now() - drainStart) / 1000;
    const cpuDrainEnd = cpuSnapshot();
    await sampler.stop();
    await riders.stop();
    let drainEstimate: { dispatchPerSec: number; remainingOrders: number; moreSeconds: number } | null = null;
    if (drainedAll) {
      log(`  drained in ${fmt(drainS, 1)} s`);
    } else {
      const drainSamples = sampler.samples.filter((x) => x.phase === 'drain');
      const a = drainSamples[0];
      const b = drainSamples.at(-1);
      const dispatchPerSec = a && b && b.t > a.t ? (b.dispatched - a.dispatched) / (b.t - a.t) : NaN;
      const remainingOrders = b?.open ?? NaN;
      drainEstimate = { dispatchPerSec, remainingOrders, moreSeconds: remainingOrders / dispatchPerSec };
      log(
        `  NOT drained within ${DRAIN_BOUND_S} s: ${fmt(remainingOrders)} orders still CREATED/PRICED; at the drain's ${fmt(dispatchPerSec)} dispatched/s ` +
          `they need about ${fmt(drainEstimate.moreSeconds)} s more. The figures below are as they stand.`,
      );
    }

    // -- 5. figures: Redis and RSS with the fleet still up (as at the start), then the fleet stops
    // (so nothing moves while MySQL is read: an undrained run keeps working until it is stopped)
    progress('bench: reading Redis and the RSS of the fleet', true);
    const endSample = await sampler.take();
    const redisEnd = endSample.redisUsedMemory;
    const benchKeysEnd = await benchKeysMemory(redis);
    const cacheEnd = await cacheKeysMemory(redis);
    const rssEnd = endSample.rss;
    await stopFleet(['web', 'worker', 'notifier']);
    let providerStats: Record<string, number> | null = null;
    try {
      const response = await fetch(`${providerUrl}/control`, { signal: AbortSignal.timeout(5000) });
      providerStats = ((await response.json()) as { stats: Record<string, number> }).stats;
    } catch {
      providerStats = null;
    }
    await stopFleet(['provider']);
    progress('bench: reading the figures from MySQL', true);
    const finalStatus = await statusCounts(db);
    const finalQueues = { orders: await queueCounts(ordersQueue), dispatch: await queueCounts(dispatchQueue), notifications: await queueCounts(notificationsQueue) };
    const rssPeak = {} as Record<FleetName, number | null>;
    for (const name of FLEET) {
      const values = [...sampler.samples, endSample].map((s) => s.rss[name]).filter((v): v is number => v !== null);
      rssPeak[name] = values.length ? Math.max(...values) : null;
    }

    // Every 202 is a row: the ids the intake answered with, looked up in MySQL.
    const rowIds = new Set(((await db('orders').select('id')) as { id: string }[]).map((row) => String(row.id)));
    const missing = counters.ids.filter((id) => !rowIds.has(id));
    const rows = rowIds.size;
    const lost = missing.length + counters.badBodies;

    const statusEnd = finalStatus;
    const dispatched = statusEnd.DISPATCHED ?? 0;
    const dispatchFailed = statusEnd.DISPATCH_FAILED ?? 0;
    const pricingFailed = statusEnd.PRICING_FAILED ?? 0;
    const processed = dispatched + dispatchFailed + pricingFailed;
    const notThrough = (statusEnd.CREATED ?? 0) + (statusEnd.PRICED ?? 0);

    const latencyRows = (
      (await db.raw(
        `SELECT TIMESTAMPDIFF(MICROSECOND, o.created_at, e.created_at) AS us
           FROM order_events e JOIN orders o ON o.id = e.order_id
          WHERE e.to_status = 'DISPATCHED'`,
      )) as [{ us: number | string }[]]
    )[0];
    const latenciesMs = latencyRows.map((row) => Number(row.us) / 1000).sort((a, b) => a - b);
    // Orders accepted but not dispatched by the end count as slower than any (p99 cannot hide them).
    const withUndispatched = [...latenciesMs, ...Array.from({ length: notThrough }, () => Number.POSITIVE_INFINITY)];
    const latency = {
      dispatchedOrders: latenciesMs.length,
      p50: percentile(withUndispatched, 50),
      p95: percentile(withUndispatched, 95),
      p99: percentile(withUndispatched, 99),
      max: notThrough > 0 ? Number.POSITIVE_INFINITY : (latenciesMs.at(-1) ?? NaN),
      undispatched: notThrough,
      /** The same over the dispatched orders alone (equal to the above when everything was dispatched). */
      dispatchedOnly: {
        p50: percentile(latenciesMs, 50),
        p95: percentile(latenciesMs, 95),
        p99: percentile(latenciesMs, 99),
        max: latenciesMs.at(-1) ?? NaN,
        mean: latenciesMs.length ? latenciesMs.reduce((a, b) => a + b, 0) / latenciesMs.length : NaN,
      },
    };

    const windowUs = Math.round(run.windowS * 1e6);
    // The steady-state window: the load's window shifted by the median latency (of the dispatched
    // orders when the median order was not dispatched at all).
    const lagMs = Number.isFinite(latency.p50) ? latency.p50 : latency.dispatchedOnly.p50;
    const lagUs = Number.isFinite(lagMs) ? Math.round(lagMs * 1000) : 0;
    const countDispatchedBetween = async (fromOffsetUs: number, toOffsetUs: number) => {
      const result = (await db.raw(
        `SELECT COUNT(*) AS n FROM order_events
          WHERE to_status = 'DISPATCHED'
            AND created_at >= DATE_ADD(?, INTERVAL ? MICROSECOND) AND created_at < DATE_ADD(?, INTERVAL ? MICROSECOND)`,
        [mysqlStart, fromOffsetUs, mysqlStart, toOffsetUs],
      )) as [{ n: number | string }[]];
      return Number(result[0][0]?.n ?? 0);
    };
    const dispatchedInWindow = await countDispatchedBetween(0, windowUs);
    const dispatchedInShiftedWindow = await countDispatchedBetween(lagUs, windowUs + lagUs);
    const span = (
      (await db.raw(
        `SELECT TIMESTAMPDIFF(MICROSECOND, (SELECT MIN(created_at) FROM orders),
                (SELECT MAX(created_at) FROM order_events WHERE to_status = 'DISPATCHED')) AS us`,
      )) as [{ us: number | string | null }[]]
    )[0][0]?.us;
    const spanS = span === null || span === undefined ? NaN : Number(span) / 1e6;
    const throughput = {
      windowS: run.windowS,
      acceptedPerSec: run.status202 / run.windowS,
      dispatchedInWindow,
      inWindowPerSec: dispatchedInWindow / run.windowS,
      lagMs: lagUs / 1000,
      dispatchedInShiftedWindow,
      shiftedWindowPerSec: dispatchedInShiftedWindow / run.windowS,
      spanS,
      overSpanPerSec: dispatched / spanS,
    };

    const ledgerRows = (await db('notifications').select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: number | string }[];
    const ledger = Object.fromEntries(ledgerRows.map((row) => [row.status, Number(row.n)]));
    // Every dispatched order tells its customer and its merchant: both ledger rows exist once the
    // notifications queue is empty (a notification job opens its row before anything else).
    const notificationsDrained = backlogOf(finalQueues.notifications) === 0;
    const missingNotifications = notificationsDrained
      ? Number(
          (
            (await db.raw(
              `SELECT COUNT(*) AS n FROM orders o
                WHERE o.status IN ('DISPATCHED', 'PICKED_UP', 'DELIVERED')
                  AND (SELECT COUNT(*) FROM notifications n
                        WHERE n.order_id = o.id AND n.kind IN ('customer.dispatched', 'merchant.dispatched')) < 2`,
            )) as [{ n: number | string }[]]
          )[0][0]?.n ?? 0,
        )
      : null;

    const loadCpu = cpuWindow(cpuLoadStart, cpuLoadEnd);
    const drainCpu = cpuWindow(cpuLoadEnd, cpuDrainEnd);
    const allCpu = cpuWindow(cpuLoadStart, cpuDrainEnd);

    const loadSamples = sampler.samples.filter((s) => s.phase === 'load');
    const openGrowth = growthOf(loadSamples.map((s) => ({ t: s.t, v: s.open })), run.windowS, RATE);
    const notifGrowth = growthOf(loadSamples.map((s) => ({ t: s.t, v: backlogOf(s.notificationsQueue) })), run.windowS, 2 * RATE);
    const ordersQueueGrowth = growthOf(loadSamples.map((s) => ({ t: s.t, v: backlogOf(s.ordersQueue) })), run.windowS, RATE);

    // -- 6. leave nothing behind in Redis (the fleet has stopped)
    const deletedAfter = await deleteBenchKeys(redis).catch(() => 0);

    // -- 7. report
    log('\n== backlog over time (every 5 s; open = orders CREATED or PRICED in MySQL; queues: wait/active/delayed)');
    const allSamples = sampler.samples;
    const table: string[][] = [];
    let prev5: Sample | undefined;
    for (const s of allSamples) {
      const isLast = s === allSamples.at(-1);
      if (prev5 && Math.floor(s.t / 5) === Math.floor(prev5.t / 5) && !isLast) continue;
      const dt = prev5 ? s.t - prev5.t : s.t;
      const rate = (x: number, y: number) => (dt > 0 ? fmt((x - y) / dt) : 'n/a');
      table.push([
        fmt(s.t, 0),
        s.phase,
        fmt(s.accepted),
        rate(s.accepted, prev5?.accepted ?? 0),
        fmt(s.dispatched),
        rate(s.dispatched, prev5?.dispatched ?? 0),
        fmt(s.open),
        `${fmt(s.ordersQueue.wait)}/${fmt(s.ordersQueue.active)}/${fmt(s.ordersQueue.delayed)}`,
        `${fmt(s.dispatchQueue.wait)}/${fmt(s.dispatchQueue.active)}/${fmt(s.dispatchQueue.delayed)}`,
        `${fmt(s.notificationsQueue.wait)}/${fmt(s.notificationsQueue.active)}/${fmt(s.notificationsQueue.delayed)}`,
        mb(s.redisUsedMemory),
        mb(s.rss.worker, 0),
        mb(s.rss.notifier, 0),
        mb(s.rss.web, 0),
        fmt(s.machineBusyPercent),
      ]);
      prev5 = s;
    }
    printTable(
      ['t s', 'phase', '202s', '/s', 'dispatched', '/s', 'open', 'orders q', 'dispatch q', 'notif q', 'redis MB', 'worker MB', 'notifier MB', 'web MB', 'cpu %'],
      table,
    );
    const growthLine = (label: string, g: Growth) =>
      `  ${label}: first third of the load ${fmt(g.firstThirdMean)}, last third ${fmt(g.lastThirdMean)} (max ${fmt(g.max)}, slope ${fmt(g.slopePerSec, 1)}/s): ` +
      `${g.grew ? 'GREW' : 'did not grow'} (tolerance ${fmt(g.tolerance)})`;
    log(growthLine('open orders (CREATED + PRICED)', openGrowth));
    log(growthLine('orders queue backlog', ordersQueueGrowth));
    log(growthLine('notifications queue backlog', notifGrowth));

    log('\n== CPU per process (% of one core; the machine has ' + `${cpus().length} cores = ${cpus().length * 100}%)`);
    const cpuRows = CPU_NAMES.map((name) => [
      name,
      fmt(loadCpu.percent[name]),
      fmt(drainCpu.percent[name]),
      allCpu.cpuMs[name] === null || processed === 0 ? 'n/a' : fmt(((allCpu.cpuMs[name] ?? 0) * 1000) / processed),
    ]);
    cpuRows.push(['machine busy (% of all cores)', fmt(loadCpu.machineBusyPercent), fmt(drainCpu.machineBusyPercent), '']);
    printTable(['process', `load (${fmt(loadCpu.seconds, 0)} s)`, `drain (${fmt(drainCpu.seconds, 0)} s)`, 'CPU µs per order (load + drain)'], cpuRows);
    log('  (mariadbd and redis-server are shared with whatever else runs on this machine)');

    const intakeBatches = intakeBatchesBetween(metricsBefore, metricsAfter);

    log('\n== results');
    log(
      `  orders: ${fmt(run.status202)} answered 202, ${fmt(rows)} rows; ${fmt(dispatched)} DISPATCHED, ${fmt(dispatchFailed)} DISPATCH_FAILED, ` +
        `${fmt(pricingFailed)} PRICING_FAILED, ${fmt(notThrough)} still CREATED/PRICED` +
        Object.entries(statusEnd)
          .filter(([s]) => !['CREATED', 'PRICED', 'DISPATCHED', 'DISPATCH_FAILED', 'PRICING_FAILED'].includes(s))
          .map(([s, n]) => `, ${fmt(n)} ${s}`)
          .join(''),
    );
    log(
      `  row check: ${lost === 0 ? 'every 202 is a row in orders' : `FAILED: ${fmt(missing.length)} ids answered 202 are not in orders, ${fmt(counters.badBodies)} 202 bodies without an id`}` +
        (rows !== run.status202 ? ` (${fmt(rows - run.status202)} rows more than 202s: committed, answer not received)` : ''),
    );
    log(
      `  intake: ${fmt(throughput.acceptedPerSec)} orders/s accepted (202) over the ${fmt(run.windowS, 2)} s load; HTTP latency p50 ${r.latency.p50} ms, ` +
        `p99 ${r.latency.p99} ms` +
        (intakeBatches ? `; ${fmt(intakeBatches.batches)} batches of ${fmt(intakeBatches.avgOrdersPerBatch, 1)} orders, ${fmt(intakeBatches.avgCommitMs, 2)} ms to commit one` : ''),
    );
    log(
      `  end to end: ${fmt(throughput.inWindowPerSec)} orders/s reached DISPATCHED during the load window (${fmt(dispatchedInWindow)} in ${fmt(run.windowS, 2)} s); ` +
        `${fmt(throughput.shiftedWindowPerSec)}/s over the same window shifted by the median latency${Number.isFinite(latency.p50) ? '' : ' of the dispatched orders'} (${fmt(throughput.lagMs)} ms); ` +
        `${fmt(throughput.overSpanPerSec)}/s over first order created -> last dispatched (${fmt(dispatched)} in ${fmt(spanS, 2)} s)`,
    );
    const d = latency.dispatchedOnly;
    log(
      `  latency 202 -> DISPATCHED (MySQL timestamps) over all ${fmt(latency.dispatchedOrders + notThrough)} accepted orders: ` +
        `p50 ${fmtMs(latency.p50)}, p95 ${fmtMs(latency.p95)}, p99 ${fmtMs(latency.p99)}, max ${fmtMs(latency.max)}` +
        (notThrough
          ? `\n    (${fmt(notThrough)} orders not dispatched by the end; over the ${fmt(latency.dispatchedOrders)} dispatched: p50 ${fmtMs(d.p50)}, ` +
            `p95 ${fmtMs(d.p95)}, p99 ${fmtMs(d.p99)}, max ${fmtMs(d.max)}, mean ${fmtMs(d.mean)})`
          : `, mean ${fmtMs(d.mean)}`),
    );
    log(
      `  Redis used_memory: ${mb(redisStart, 2)} MB at start, ${mb(redisEnd, 2)} MB after the drain (${signedMb(redisEnd - redisStart)} MB) after ${fmt(processed)} orders processed; ` +
        `keys under ${QUEUE_PREFIX}: ${fmt(benchKeysStart.keys)} (${mb(benchKeysStart.bytes, 2)} MB) -> ${fmt(benchKeysEnd.keys)} (${mb(benchKeysEnd.bytes, 2)} MB)` +
        (benchKeysEnd.largest.length ? `, largest: ${benchKeysEnd.largest.map((k) => `${k.key.slice(QUEUE_PREFIX.length + 1)} ${mb(k.bytes, 2)} MB`).join(', ')}` : '') +
        `; the order cache under ${CACHE_PREFIX}: ${fmt(cacheEnd.keys)} keys, ${mb(cacheEnd.bytes, 2)} MB (entries expire after CACHE_TTL_MS = ${fmt(fleetConfig.cacheTtlMs)} ms); ` +
        `the rest (used_memory growth less the queues' and the cache's): ${signedMb(redisEnd - redisStart - (benchKeysEnd.bytes - benchKeysStart.bytes) - cacheEnd.bytes)} MB`,
    );
    log(`  RSS MB (start / peak / end): ${FLEET.map((n) => `${n} ${mb(rssStart[n])} / ${mb(rssPeak[n])} / ${mb(rssEnd[n])}`).join('; ')}`);
    log(
      `  notifications: ledger ${Object.entries(ledger).map(([s, n]) => `${fmt(n)} ${s}`).join(', ') || 'empty'} (expected ${fmt(2 * dispatched)}: 2 per dispatched order); ` +
        (providerStats
          ? `dev provider: ${fmt(providerStats.deliveries)} delivered, ${fmt(providerStats.duplicates)} duplicates, ${fmt(providerStats.failures)} failures, ${fmt(providerStats.requests)} requests`
          : 'dev provider stats: n/a') +
        `; failed jobs: orders ${fmt(finalQueues.orders.failed)}, notifications ${fmt(finalQueues.notifications.failed)}; ` +
        `left on the queues: orders ${fmt(backlogOf(finalQueues.orders))}, notifications ${fmt(backlogOf(finalQueues.notifications))}`,
    );
    log(
      missingNotifications === null
        ? '  dispatched orders missing a notification: n/a (notification jobs were left on the queue)'
        : `  dispatched orders missing a notification (no ledger row for one of the two): ${fmt(missingNotifications)}${missingNotifications ? ' (NOT every dispatched order was notified)' : ''}`,
    );
    for (const proc of fleet.values()) {
      if (proc.warningKinds.size === 0) continue;
      const kinds = [...proc.warningKinds].sort((a, b) => b[1] - a[1]);
      log(`  ${proc.name} logged ${fmt(proc.warnings)} warnings/errors: ${kinds.slice(0, 5).map(([k, n]) => `${fmt(n)} x "${k}"`).join('; ')}${kinds.length > 5 ? '; ...' : ''}`);
    }
    log(`  rider simulator: ${fmt(riders.resets)} resets, ${fmt(riders.ridersFreed)} rider rows freed`);
    const sampleCosts = allSamples.map((x) => x.sampleMs).sort((a, b) => a - b);
    log(
      `  the bench's own sampling (2 x getJobCounts, GROUP BY status, INFO memory, once a second): ` +
        `median ${fmt(percentile(sampleCosts, 50), 1)} ms, max ${fmt(sampleCosts.at(-1), 1)} ms per sample`,
    );
    if (noop) log(`  reference: BullMQ no-op ceiling ${fmt(noop.jobsPerSec)} jobs/s (concurrency ${noop.concurrency}, empty processor, machine quiet)`);
    log(`  Redis keys deleted after the run: ${fmt(deletedAfter)}`);

    // Verdicts
    type Verdict = 'PASS' | 'FAIL' | 'n/a';
    const e2eRate = throughput.shiftedWindowPerSec;
    const verdicts: { target: string; measured: string; verdict: Verdict }[] = [
      {
        target: `>= ${fmt(TARGET.minOrdersPerSec)} orders/s end to end`,
        measured:
          `${fmt(e2eRate)}/s (window shifted by the median latency; ${fmt(throughput.inWindowPerSec)}/s unshifted, ${fmt(throughput.overSpanPerSec)}/s over the span; ` +
          `offered ${fmt(RATE)}/s${noop ? `; no-op ceiling ${fmt(noop.jobsPerSec)} jobs/s` : ''})`,
        verdict: drainedAll && e2eRate >= TARGET.minOrdersPerSec * (1 - RATE_TOLERANCE) ? 'PASS' : 'FAIL',
      },
      {
        target: `p99 202 -> DISPATCHED <= ${fmt(TARGET.maxP99Ms)} ms`,
        measured: notThrough
          ? `p99: ${fmtMs(latency.p99)} (${fmt(notThrough)} of ${fmt(latency.dispatchedOrders + notThrough)} orders not dispatched; p99 of the dispatched ${fmtMs(d.p99)})`
          : `p99 ${fmtMs(latency.p99)} (p50 ${fmtMs(latency.p50)}, max ${fmtMs(latency.max)})`,
        verdict: latency.p99 <= TARGET.maxP99Ms ? 'PASS' : 'FAIL',
      },
      {
        target: 'backlog does not grow',
        measured: `open orders ${fmt(openGrowth.firstThirdMean)} -> ${fmt(openGrowth.lastThirdMean)}, notifications queue ${fmt(notifGrowth.firstThirdMean)} -> ${fmt(notifGrowth.lastThirdMean)} (first -> last third of the load)`,
        verdict: !openGrowth.grew && !notifGrowth.grew && !ordersQueueGrowth.grew ? 'PASS' : 'FAIL',
      },
      {
        target: `Redis used_memory within ${mb(TARGET.maxRedisGrowthBytes, 0)} MB of the start after ${fmt(TARGET.redisAfterOrders)} orders processed`,
        measured: `${signedMb(redisEnd - redisStart)} MB after ${fmt(processed)} orders${drainedAll ? '' : ' (not drained)'} (order cache ${mb(cacheEnd.bytes, 1)} MB of it, queues ${signedMb(benchKeysEnd.bytes - benchKeysStart.bytes)} MB)`,
        verdict:
          processed < TARGET.redisAfterOrders
            ? 'n/a'
            : Math.abs(redisEnd - redisStart) <= TARGET.maxRedisGrowthBytes && drainedAll
              ? 'PASS'
              : 'FAIL',
      },
    ];
    log('');
    printTable(['target', 'verdict', 'measured'], verdicts.map((v) => [v.target, v.verdict, v.measured]));
    log(`  worker RSS: ${mb(rssStart.worker)} MB at start, ${mb(rssPeak.worker)} MB peak, ${mb(rssEnd.worker)} MB at the end`);
    if (verdicts[3]!.verdict === 'n/a') log(`  (the Redis target needs ${fmt(TARGET.redisAfterOrders)} orders processed; this run processed ${fmt(processed)})`);

    const summary = {
      ...summaryHead('pipeline'),
      settings: {
        rate: RATE,
        durationS: DURATION_S,
        ordersSetting: ORDERS,
        connections: CONNECTIONS,
        stagger: STAGGER,
        noopJobs: NOOP_JOBS,
        drainBoundS: DRAIN_BOUND_S,
        mysqlDatabase: databaseName(MYSQL_URL),
        queuePrefix: QUEUE_PREFIX,
        logLevel: LOG_LEVEL,
        fleet: {
          dispatchWindowMs: fleetConfig.dispatchWindowMs,
          dispatchBatchSize: fleetConfig.dispatchBatchSize,
          orderWorkerConcurrency: fleetConfig.orderWorkerConcurrency,
          notifierConcurrency: fleetConfig.notifierConcurrency,
          cpuThreads: fleetConfig.cpuThreads,
          dbPoolMax: fleetConfig.dbPoolMax,
          intakeBatchMax: fleetConfig.intakeBatchMax,
          intakeBatchWaitMs: fleetConfig.intakeBatchWaitMs,
          intakeMaxInFlight: fleetConfig.intakeMaxInFlight,
        },
        benchData: { zones: ZONES, ridersPerZone: RIDERS_PER_ZONE, riderCapacity: RIDER_CAPACITY, riderResetMs: RIDER_RESET_MS },
      },
      noop,
      load: {
        windowS: run.windowS,
        sent: run.sent,
        responses: run.responses,
        status202: run.status202,
        statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        unanswered: run.unanswered,
        drained: run.drained,
        httpLatencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, average: r.latency.average },
        intakeBatches,
      },
      orders: { rows, status: statusEnd, dispatched, dispatchFailed, pricingFailed, notThrough, processed, missing202Ids: missing.length, badBodies: counters.badBodies },
      drain: { drained: drainedAll, seconds: drainS, estimate: drainEstimate },
      throughput,
      latencyMs: latency,
      backlog: { openOrders: openGrowth, ordersQueue: ordersQueueGrowth, notificationsQueue: notifGrowth },
      redis: {
        usedMemoryStart: redisStart,
        usedMemoryEnd: redisEnd,
        deltaBytes: redisEnd - redisStart,
        benchKeysStart: benchKeysStart,
        benchKeysEnd: benchKeysEnd,
        orderCacheEnd: cacheEnd,
        deletedAfter,
      },
      rssBytes: { start: rssStart, peak: rssPeak, end: rssEnd },
      notifications: { ledger, provider: providerStats, failedJobs: finalQueues.notifications.failed, dispatchedOrdersMissingANotification: missingNotifications },
      queuesAtEnd: finalQueues,
      cpu: { load: loadCpu, drain: drainCpu, perOrderUs: Object.fromEntries(CPU_NAMES.map((n) => [n, allCpu.cpuMs[n] === null || !processed ? null : ((allCpu.cpuMs[n] ?? 0) * 1000) / processed])) },
      riderSimulator: { resets: riders.resets, ridersFreed: riders.ridersFreed },
      fleet: Object.fromEntries(
        FLEET.map((n) => [
          n,
          {
            pid: fleet.get(n)?.pid ?? null,
            warnings: fleet.get(n)?.warnings ?? null,
            warningKinds: Object.fromEntries(fleet.get(n)?.warningKinds ?? []),
            exit: exits[n] ?? null,
          },
        ]),
      ),
      targets: verdicts,
    };
    writeResultsFile('pipeline', summaryWithSeriesJson(summary, 'samples', samplesTable(allSamples)));

    if (lost > 0) {
      log('ROW CHECK FAILED: orders answered 202 are missing from MySQL');
      return 1;
    }
    return 0;
  } catch (error) {
    dumpOutput();
    throw error;
  } finally {
    await sampler?.stop().catch(() => undefined);
    await riders?.stop().catch(() => undefined);
    await stopFleet().catch(() => undefined);
    await deleteBenchKeys(redis).catch(() => undefined);
    await Promise.all([ordersQueue.close(), dispatchQueue.close(), notificationsQueue.close()]).catch(() => undefined);
    redis.disconnect();
    await db.destroy();
  }
}

runBench(main, 'fleet');
