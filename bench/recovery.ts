/**
 * Recovery bench: `npm run bench:recovery` (issue 5).
 *
 * Part 1: 100,000 orders in failed or orphaned states re-driven to their next state; target at
 * most 60 s on this machine.
 *   - A fresh database (courier_bench_recovery) seeded with multi-row INSERTs: 40% PRICING_FAILED
 *     and 40% DISPATCH_FAILED, due now (2% and 5% of them with their attempt budget spent, so they
 *     escalate to CANCELLED), and 20% orphaned CREATED orders (last changed 10 minutes ago, no job
 *     in Redis).
 *   - A Redis server of the bench's own (bench/lib/private-redis.ts: isolated from other people's
 *     tests, nothing left behind), under a queue prefix and a cache prefix of the bench.
 *   - Recovery as production runs it: a real worker process (workers/orders.ts) takes one
 *     `orders.compensate` and one `orders.reconcile` job, enqueued on the maintenance queue as the
 *     scheduler's ticks do (reason `cli`). The orders and dispatch queues are paused (BullMQ's global pause) for
 *     this part: otherwise the same worker's order pipeline would start pricing the re-driven
 *     orders at once, taking the CPU the measurement is about and moving orders past the state
 *     being measured. The maintenance queue is not paused.
 *   - Done when every one of the orders has moved to its next state, checked from outside: no
 *     order left PRICING_FAILED or DISPATCH_FAILED; every CREATED order's price job (the id of its
 *     current try) waiting on the orders queue; a dispatch run waiting for every zone with PRICED
 *     orders; every CANCELLED order's `customer.cancelled` job waiting on the notifications queue
 *     (and its PENDING ledger row). Progress every 250 ms; the exact check (every order id against
 *     the queue's wait list) runs once the counts say it can pass.
 *   - The baseline, on new samples of the same mix after the worker stopped: the same re-drive one
 *     order at a time in this process, through the single-order routine (createOrderWriter().change,
 *     then one queue.add per order; an orphan: Job.fromId, then queue.add), sequentially and with
 *     BENCH_BASELINE_CONCURRENCY orders in flight; extrapolated to the part's order count.
 *
 * Part 2: recovery after a FLUSHALL under load.
 *   - A fresh database (courier_bench_recovery_flush) and a fresh private Redis (FLUSHALL empties
 *     the whole instance: never the shared one). The fleet as the Procfile runs it: dev provider,
 *     web, worker, notifier, scheduler (compensation and reconciliation ticks every 2 s, one of
 *     them each second; reconcile grace periods of a few seconds; RETRY_BASE_MS 1 s).
 *     10 zones, 30 riders of capacity 10 each and the pipeline bench's rider simulator.
 *   - Calibration, before the scheduler starts (the pipeline's own capacity, without the
 *     maintenance ticks): BENCH_CALIBRATE_ORDERS posted at BENCH_CALIBRATE_RATE; the rate at which
 *     95% of them went through (first created -> the 95th percentile DISPATCHED, MySQL timestamps)
 *     is the capacity; the load runs at half of it (or BENCH_FLUSH_RATE).
 *   - The load: BENCH_FLUSH_ORDERS orders at that rate, FLUSHALL at mid-run, the load going on.
 *     From the FLUSHALL, every 250 ms: are all orders accepted before it (created_at before it,
 *     MySQL) back in the queues or done (terminal; a price job or a dispatch run of their zone
 *     waiting, delayed or active; or a failure state that compensation reads from MySQL), and are
 *     their owed notifications (PENDING ledger rows) back on the notifications queue or SENT?
 *   - Then (bounded) until every accepted order is DISPATCHED or CANCELLED and every notification
 *     SENT. Figures: time from the FLUSHALL until the orders were back, until they were done, until
 *     everything was done; end-to-end latency (202 -> DISPATCHED) of the orders that saw the flush
 *     against those that did not; no notification twice (the dev provider's GET /v1/messages, at
 *     most one per (orderId, kind); ledger rows SENT = messages delivered).
 *
 * Everything is bounded in time and count, talks only to 127.0.0.1, and stops every process it
 * started (also on a failure or SIGINT). Results: bench/results/recovery-<timestamp>.json.
 *
 * Options (or env): --orders (BENCH_RECOVERY_ORDERS, 100000), --baseline-orders
 * (BENCH_BASELINE_ORDERS, 3000 per baseline run; 0 = none), BENCH_BASELINE_CONCURRENCY ("1,32"),
 * --flush-orders (BENCH_FLUSH_ORDERS, 3000), --flush-rate (BENCH_FLUSH_RATE, 0 = half the measured
 * capacity), BENCH_CALIBRATE_ORDERS (2000), BENCH_CALIBRATE_RATE (400), --parts (BENCH_PARTS, "1,2"),
 * BENCH_LOG_LEVEL (warn: the fleet of part 2), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306/courier_bench_recovery;
 * part 2 adds _flush to its database name). Courier's own settings pass through to the processes.
 */
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { createDb, databaseName, type Db } from '../shared/db.ts';
import { IdGenerator } from '../shared/ids.ts';
import { openLedgerEntriesIn } from '../shared/notifications/notification-ledger.ts';
import { NOTIFICATION_JOB_OPTIONS } from '../shared/notifications/retry-policy.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import { budgetSpent, retryPolicyFrom, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { RETRY_STATE, type FailedStatus } from '../shared/orders/state-machine.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { enqueueOrderMaintenance } from '../shared/queues/maintenance-producer.ts';
import { dispatchJobId, notificationJobId, priceJobId } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES, type QueueName } from '../shared/queues/queue-names.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { openBenchDatabase } from './lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders, type BenchMerchant } from './lib/bench-zones.ts';
import { backlogOf, queueCounts, type QueueCounts } from './lib/queue-counts.ts';
import { benchFleetEnv, type BenchProcess, type Exit, exitNow, httpOk, ROOT, runBench, startBenchProcess, stopBenchProcess } from './lib/child-processes.ts';
import { benchMysqlUrl, intEnv } from './lib/env.ts';
import { RiderSimulator } from './lib/rider-simulator.ts';
import { countWarning } from './lib/warnings.ts';
import { fmt, log, printTable, progress } from './lib/log.ts';
import { prng } from './lib/prng.ts';
import { newLoadCounters, runOrderLoad } from './lib/order-load.ts';
import { startPrivateRedis, type PrivateRedisServer } from './lib/private-redis.ts';
import { summaryHead } from './lib/results-file.ts';
import { pidsNamed, readMachineCpuMs, readProcCpuMs, sumCpuMs } from './proc-stats.ts';

// ---------------------------------------------------------------------------------------------
// Settings

const { values: argv } = parseArgs({
  options: {
    orders: { type: 'string' },
    'baseline-orders': { type: 'string' },
    'flush-orders': { type: 'string' },
    'flush-rate': { type: 'string' },
    parts: { type: 'string' },
  },
  allowPositionals: false,
});

/** An integer from the command line (--name) or else the environment, checked like intEnv. */
function setting(arg: string | undefined, env: string, fallback: number, min: number, max: number): number {
  if (arg === undefined) return intEnv(env, fallback, min, max);
  const value = Number(arg);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${env} must be an integer from ${min} to ${max}, got "${arg}"`);
  return value;
}

const ORDERS = setting(argv.orders, 'BENCH_RECOVERY_ORDERS', 100_000, 10, 1_000_000);
const BASELINE_ORDERS = setting(argv['baseline-orders'], 'BENCH_BASELINE_ORDERS', 3000, 0, 100_000);
const BASELINE_CONCURRENCIES = (process.env.BENCH_BASELINE_CONCURRENCY || '1,32')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => {
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`BENCH_BASELINE_CONCURRENCY: each value must be an integer from 1 to 256`);
    return true;
  });
const FLUSH_ORDERS = setting(argv['flush-orders'], 'BENCH_FLUSH_ORDERS', 3000, 100, 100_000);
const FLUSH_RATE_SETTING = setting(argv['flush-rate'], 'BENCH_FLUSH_RATE', 0, 0, 5000);
const CALIBRATE_ORDERS = intEnv('BENCH_CALIBRATE_ORDERS', 2000, 100, 20_000);
const CALIBRATE_RATE = intEnv('BENCH_CALIBRATE_RATE', 400, 10, 5000);
const PARTS = new Set(
  (argv.parts ?? process.env.BENCH_PARTS ?? '1,2').split(',').map((p) => {
    const part = p.trim();
    if (part !== '1' && part !== '2') throw new Error(`--parts: "1", "2" or "1,2", got "${part}"`);
    return part;
  }),
);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'warn';

const MYSQL_URL_1 = benchMysqlUrl('courier_bench_recovery');
const MYSQL_URL_2 = withDatabase(MYSQL_URL_1, `${databaseName(MYSQL_URL_1)}_flush`);
const PREFIX_1 = '{courier-bench-recovery}';
const CACHE_PREFIX_1 = 'courier-bench-recovery:cache';
const PREFIX_2 = '{courier-bench-flush}';
const CACHE_PREFIX_2 = 'courier-bench-flush:cache';

/** The seeded mix (part 1 and the baseline). */
const MIX = { pricingFailed: 0.4, dispatchFailed: 0.4, escalatePricing: 0.02, escalateDispatch: 0.05 } as const;
const SEED_CHUNK = 2000;
const ZONES = 10;
const RIDERS_PER_ZONE = 30;
const RIDER_CAPACITY = 10;
const RIDER_RESET_MS = 200;

/** Bounds: nothing waits for ever. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const PART1_BOUND_S = 300;
const CALIBRATE_BOUND_S = 120;
const PART2_DRAIN_BOUND_S = 180;
const TOTAL_BOUND_S = 25 * 60;

const TARGET_S = 60;

function withDatabase(mysqlUrl: string, name: string): string {
  const url = new URL(mysqlUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const seconds = (fromPerf: number, toPerf = performance.now()) => (toPerf - fromPerf) / 1000;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function stats(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN,
  };
}
type Stats = ReturnType<typeof stats>;
const fmtStats = (s: Stats, unit = 'ms') =>
  s.n === 0 ? 'none' : `n ${fmt(s.n)}: p50 ${fmt(s.p50)} ${unit}, p95 ${fmt(s.p95)}, p99 ${fmt(s.p99)}, max ${fmt(s.max)} ${unit}`;


async function mysqlNow(db: Db): Promise<string> {
  return ((await db.raw("SELECT DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f') AS t")) as [{ t: string }[]])[0][0]!.t;
}

async function statusCounts(db: Db, where?: (q: ReturnType<Db>) => void): Promise<Record<string, number>> {
  const query = db('orders').select('status').count({ n: '*' }).groupBy('status');
  where?.(query);
  const rows = (await query) as { status: string; n: number | string }[];
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Runs fn over items with at most `concurrency` in flight. */
async function eachLimited<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await fn(item);
      }
    }),
  );
}

/** The bench's handles on Courier's queues under one prefix (counts and job lookups; the fleet runs the jobs). */
function benchQueues(redis: Redis, prefix: string) {
  const queue = (name: QueueName) => new Queue(name, { connection: redis, prefix });
  return { orders: queue(QUEUE_NAMES.orders), dispatch: queue(QUEUE_NAMES.dispatch), notifications: queue(QUEUE_NAMES.notifications), maintenance: queue(QUEUE_NAMES.maintenance) };
}

/** Job ids on a queue that are still to run: waiting, prioritized, delayed or active. */
async function liveJobIds(redis: Redis, queue: Queue): Promise<Set<string>> {
  const [wait, active, delayed, prioritized] = await Promise.all([
    redis.lrange(queue.keys.wait!, 0, -1),
    redis.lrange(queue.keys.active!, 0, -1),
    redis.zrange(queue.keys.delayed!, '0', '-1'),
    redis.zrange(queue.keys.prioritized!, '0', '-1'),
  ]);
  return new Set([...wait, ...active, ...delayed, ...prioritized]);
}


// ---------------------------------------------------------------------------------------------
// CPU per process (Linux /proc), over a window

type CpuSnapshot = { at: number; ms: Record<string, number | null>; machine: { busyMs: number; totalMs: number } | null };

function cpuSnapshot(pids: Record<string, number[]>): CpuSnapshot {
  const ms: Record<string, number | null> = {};
  for (const [name, list] of Object.entries(pids)) ms[name] = list.length === 1 ? readProcCpuMs(list[0]!) : sumCpuMs(list);
  const own = process.cpuUsage();
  ms.bench = (own.user + own.system) / 1000;
  return { at: performance.now(), ms, machine: readMachineCpuMs() };
}

/** % of one core per process between two snapshots, and the machine's busy % of all cores. */
function cpuWindow(a: CpuSnapshot, b: CpuSnapshot): { seconds: number; percent: Record<string, number | null>; machineBusyPercent: number | null } {
  const s = (b.at - a.at) / 1000;
  const percent: Record<string, number | null> = {};
  for (const name of Object.keys(b.ms)) {
    const x = a.ms[name];
    const y = b.ms[name];
    percent[name] = x === null || x === undefined || y === null || y === undefined || s <= 0 ? null : (y - x) / 10 / s;
  }
  const machineBusyPercent =
    a.machine && b.machine && b.machine.totalMs > a.machine.totalMs
      ? (100 * (b.machine.busyMs - a.machine.busyMs)) / (b.machine.totalMs - a.machine.totalMs)
      : null;
  return { seconds: s, percent, machineBusyPercent };
}

// ---------------------------------------------------------------------------------------------
// Processes of the fleet (bench/lib/child-processes.ts: own process group, stopped whatever happens)

interface FleetProcess extends BenchProcess {
  warnings: number;
  readonly warningKinds: Map<string, number>;
  /** Log lines of interest (maintenance summaries, watchdog replacements): when (epoch ms) and what. */
  readonly notable: { readonly at: number; readonly msg: string }[];
}

const running = new Map<string, FleetProcess>();
const exits = new Map<string, Exit & { forced: boolean; seconds: number }>();
/** The notable lines of the processes stopped so far. */
const exitedNotes: Record<string, { at: number; msg: string }[]> = {};
/** Set when a process dies on its own: the bench stops. */
let fleetFailure: string | null = null;


const NOTABLE = /compensation:|reconcile:|worker stuck|maintenance job failed/;

async function startProcess(
  name: string,
  file: string,
  env: NodeJS.ProcessEnv,
  readyLine: RegExp,
  probe: () => Promise<boolean>,
): Promise<FleetProcess> {
  const proc = await startBenchProcess<{ warnings: number; warningKinds: Map<string, number>; notable: { at: number; msg: string }[] }>(
    {
      name,
      file,
      env,
      readyLine,
      probe,
      timeoutMs: START_TIMEOUT_MS,
      suppressedNote: `more output suppressed; ${name} keeps counting its warnings`,
      onLine: (p, stream, line) => {
        countWarning(p, stream, line);
        if (NOTABLE.test(line) && p.notable.length < 200) {
          try {
            const entry = JSON.parse(line) as { msg?: unknown; time?: unknown; queue?: unknown };
            const at = typeof entry.time === 'number' ? entry.time : typeof entry.time === 'string' ? Date.parse(entry.time) : Date.now();
            p.notable.push({ at, msg: `${String(entry.msg)}${typeof entry.queue === 'string' ? ` (queue ${entry.queue})` : ''}` });
          } catch {
            p.notable.push({ at: Date.now(), msg: line.slice(0, 300) });
          }
        }
      },
    },
    { warnings: 0, warningKinds: new Map(), notable: [] },
  );
  running.set(name, proc);
  exits.delete(name);
  void proc.exited.then(({ code, signal }) => {
    if (proc.stopping) return;
    fleetFailure = `${name} (pid ${proc.pid}) exited on its own: code ${code}, signal ${signal}`;
    log(`bench: ${fleetFailure}\n${proc.output.slice(-20).join('\n')}`);
  });
  return proc;
}

async function stopProcesses(names: readonly string[]): Promise<void> {
  for (const name of names) {
    const proc = running.get(name);
    if (!proc || exits.has(name)) continue;
    const exit = await stopBenchProcess(proc, STOP_TIMEOUT_MS);
    exits.set(name, exit);
    exitedNotes[name] = proc.notable;
    running.delete(name);
    log(
      `  [${name}] pid ${proc.pid} stopped: code ${exit.code}, signal ${exit.signal}, ${fmt(exit.seconds * 1000)} ms after SIGTERM` +
        `${exit.forced ? ' (killed after the bound)' : ''}; ${fmt(proc.warnings)} warning/error log lines`,
    );
    for (const [kind, n] of [...proc.warningKinds].sort((a, b) => b[1] - a[1]).slice(0, 6)) log(`      ${fmt(n)} x "${kind}"`);
  }
}

function warningsOf(proc: FleetProcess | undefined) {
  return proc ? { warnings: proc.warnings, kinds: Object.fromEntries(proc.warningKinds), notable: proc.notable } : null;
}

function dumpOutput(): void {
  for (const proc of running.values()) {
    if (proc.output.length) log(`  [${proc.name}] last output:\n${proc.output.slice(-10).map((l) => `    ${l.slice(0, 300)}`).join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding orders in failed or orphaned states

type SeedKind = 'pricing' | 'pricing-escalate' | 'dispatch' | 'dispatch-escalate' | 'orphan';
const SEED_KINDS: readonly SeedKind[] = ['pricing', 'pricing-escalate', 'dispatch', 'dispatch-escalate', 'orphan'];

interface SeededOrder {
  readonly id: string;
  readonly kind: SeedKind;
  readonly status: FailedStatus | 'CREATED';
  readonly attempts: number;
  readonly zoneId: string;
}

interface Seeded {
  readonly orders: SeededOrder[];
  readonly byKind: Record<SeedKind, number>;
  readonly seconds: number;
  readonly rowsPerSec: number;
}

/**
 * Inserts `count` orders of the mix, SEED_CHUNK rows per INSERT (two in flight). Failed orders are
 * due (next_attempt_at 1-60 s ago); the escalating ones sit at their state's budget; orphans are
 * CREATED, last changed 10 minutes ago, with no job anywhere.
 */
async function seedOrders(
  db: Db,
  opts: { count: number; clientId: string; merchants: readonly BenchMerchant[]; policy: RetryPolicy; label: string; seed: number },
): Promise<Seeded> {
  const random = prng(opts.seed);
  const ids = new IdGenerator(61);
  const now = Date.now();
  const orders: SeededOrder[] = [];
  const byKind = Object.fromEntries(SEED_KINDS.map((k) => [k, 0])) as Record<SeedKind, number>;
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < opts.count; i++) {
    const merchant = opts.merchants[i % opts.merchants.length]!;
    const r = random();
    let kind: SeedKind;
    let status: SeededOrder['status'];
    let attempts: number;
    if (r < MIX.pricingFailed) {
      status = 'PRICING_FAILED';
      kind = random() < MIX.escalatePricing ? 'pricing-escalate' : 'pricing';
      attempts = kind === 'pricing-escalate' ? opts.policy.budget.PRICING_FAILED : Math.floor(random() * opts.policy.budget.PRICING_FAILED);
    } else if (r < MIX.pricingFailed + MIX.dispatchFailed) {
      status = 'DISPATCH_FAILED';
      kind = random() < MIX.escalateDispatch ? 'dispatch-escalate' : 'dispatch';
      attempts = kind === 'dispatch-escalate' ? opts.policy.budget.DISPATCH_FAILED : Math.floor(random() * opts.policy.budget.DISPATCH_FAILED);
    } else {
      status = 'CREATED';
      kind = 'orphan';
      attempts = 0;
    }
    const id = ids.next(i % 64);
    byKind[kind] += 1;
    orders.push({ id, kind, status, attempts, zoneId: merchant.zoneId });
    const failed = status !== 'CREATED';
    rows.push({
      id,
      client_id: opts.clientId,
      idempotency_key: `recovery-${opts.label}-${opts.seed}-${i}`,
      request_hash: 'b'.repeat(64),
      merchant_id: merchant.id,
      zone_id: merchant.zoneId,
      status,
      // CREATED (1) -> [PRICED (2) ->] failed, and two versions per re-drive since.
      version: status === 'CREATED' ? 1 : (status === 'PRICING_FAILED' ? 2 : 3) + 2 * attempts,
      attempts,
      next_attempt_at: failed ? new Date(now - 1000 - Math.floor(random() * 59_000)) : null,
      last_error: status === 'PRICING_FAILED' ? 'bench: pricing failed (seeded)' : status === 'DISPATCH_FAILED' ? 'no free rider in range' : null,
      pickup_lat: merchant.lat,
      pickup_lng: merchant.lng,
      dropoff_lat: +(merchant.lat + 0.01).toFixed(6),
      dropoff_lng: +(merchant.lng + 0.01).toFixed(6),
      dropoff_address: '88 Century Ave',
      dropoff_phone: '+8613800000000',
      items: '[{"sku":"NOODLE-01","name":"Beef noodles","qty":2,"priceCents":1800}]',
      note: null,
      fee_cents: status === 'DISPATCH_FAILED' ? 1250 : null,
      eta_seconds: status === 'DISPATCH_FAILED' ? 1500 : null,
      created_at: new Date(now - 15 * 60_000),
      updated_at: new Date(now - (failed ? 2 : 10) * 60_000),
    });
  }

  const t0 = performance.now();
  let inserted = 0;
  let lastForced = 0;
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < rows.length; i += SEED_CHUNK) chunks.push(rows.slice(i, i + SEED_CHUNK));
  await eachLimited(chunks, 2, async (chunk) => {
    await db('orders').insert(chunk);
    inserted += chunk.length;
    const elapsed = seconds(t0);
    const force = elapsed - lastForced >= 3 || inserted === rows.length;
    if (force) lastForced = elapsed;
    progress(`  [${opts.label}] ${fmt(inserted)} / ${fmt(rows.length)} orders inserted (${fmt(inserted / Math.max(elapsed, 0.001))} rows/s)`, force);
  });
  const s = seconds(t0);
  return { orders, byKind, seconds: s, rowsPerSec: rows.length / s };
}

/** What the re-drive must leave: the status each seeded order moves to. */
function expectedStatus(kind: SeedKind): 'CREATED' | 'PRICED' | 'CANCELLED' {
  switch (kind) {
    case 'pricing':
    case 'orphan':
      return 'CREATED';
    case 'dispatch':
      return 'PRICED';
    default:
      return 'CANCELLED';
  }
}

// ---------------------------------------------------------------------------------------------
// Part 1: the re-drive of ORDERS orders by a real worker process

interface Part1Check {
  readonly ok: boolean;
  readonly statusWrong: number;
  readonly createdWithoutJob: number;
  readonly zonesWithoutDispatch: number;
  readonly cancelledWithoutNotification: number;
  readonly cancelledWithoutLedgerRow: number;
  readonly strayPriceJobs: number;
  readonly checkMs: number;
}

/** The exact check: every seeded order in its next state, with its job waiting. */
async function checkPart1(db: Db, redis: Redis, queues: { orders: Queue; dispatch: Queue; notifications: Queue }, seeded: Seeded): Promise<Part1Check> {
  const t0 = performance.now();
  const rows = (await db('orders').select('id', 'status', 'attempts', 'zone_id')) as { id: string; status: string; attempts: number; zone_id: string }[];
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  const [ordersWait, dispatchWait, notificationsWait] = await Promise.all([
    liveJobIds(redis, queues.orders),
    liveJobIds(redis, queues.dispatch),
    liveJobIds(redis, queues.notifications),
  ]);
  const pendingLedger = new Set(
    ((await db('notifications').select('order_id').where({ kind: 'customer.cancelled', status: 'PENDING' })) as { order_id: string }[]).map((r) =>
      String(r.order_id),
    ),
  );
  const dispatchZones = new Set<string>();
  for (const jobId of dispatchWait) {
    const match = /^dispatch-(.+)-\d+$/.exec(jobId);
    if (match) dispatchZones.add(match[1]!);
  }
  let statusWrong = 0;
  let createdWithoutJob = 0;
  let cancelledWithoutNotification = 0;
  let cancelledWithoutLedgerRow = 0;
  let priceJobsMatched = 0;
  const pricedZones = new Set<string>();
  for (const order of seeded.orders) {
    const row = byId.get(order.id);
    const want = expectedStatus(order.kind);
    if (!row || row.status !== want) {
      statusWrong += 1;
      continue;
    }
    if (want === 'CREATED') {
      if (ordersWait.has(priceJobId(order.id, Number(row.attempts)))) priceJobsMatched += 1;
      else createdWithoutJob += 1;
    } else if (want === 'PRICED') {
      pricedZones.add(String(row.zone_id));
    } else {
      if (!notificationsWait.has(notificationJobId(order.id, 'customer.cancelled'))) cancelledWithoutNotification += 1;
      if (!pendingLedger.has(order.id)) cancelledWithoutLedgerRow += 1;
    }
  }
  const zonesWithoutDispatch = [...pricedZones].filter((zone) => !dispatchZones.has(zone)).length;
  const priceJobs = [...ordersWait].filter((jobId) => jobId.startsWith('order-')).length;
  const strayPriceJobs = priceJobs - priceJobsMatched;
  return {
    ok: statusWrong === 0 && createdWithoutJob === 0 && zonesWithoutDispatch === 0 && cancelledWithoutNotification === 0 && cancelledWithoutLedgerRow === 0,
    statusWrong,
    createdWithoutJob,
    zonesWithoutDispatch,
    cancelledWithoutNotification,
    cancelledWithoutLedgerRow,
    strayPriceJobs,
    checkMs: performance.now() - t0,
  };
}

interface MaintenanceJobView {
  readonly id: string;
  readonly state: string;
  readonly attemptsMade: number | null;
  readonly queuedMs: number | null;
  readonly runMs: number | null;
  readonly finishedAfterEnqueueMs: number | null;
  readonly returnvalue: unknown;
  readonly failedReason: string | null;
}

async function viewJob(queue: Queue, id: string, enqueuedAt: number): Promise<MaintenanceJobView> {
  const job = await Job.fromId(queue, id);
  if (!job) return { id, state: 'missing', attemptsMade: null, queuedMs: null, runMs: null, finishedAfterEnqueueMs: null, returnvalue: null, failedReason: null };
  const state = await job.getState();
  return {
    id,
    state,
    attemptsMade: job.attemptsMade,
    queuedMs: job.processedOn ? job.processedOn - enqueuedAt : null,
    runMs: job.processedOn && job.finishedOn ? job.finishedOn - job.processedOn : null,
    finishedAfterEnqueueMs: job.finishedOn ? job.finishedOn - enqueuedAt : null,
    returnvalue: job.returnvalue ?? null,
    failedReason: job.failedReason ?? null,
  };
}

async function part1(): Promise<Record<string, unknown>> {
  log(`\n== part 1: ${fmt(ORDERS)} orders in failed or orphaned states re-driven by a worker process (target <= ${TARGET_S} s)`);
  const redisServer = await startPrivateRedis();
  log(`  private redis-server on ${redisServer.url} (no persistence); queue prefix ${PREFIX_1}, cache prefix ${CACHE_PREFIX_1}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MYSQL_URL: MYSQL_URL_1,
    REDIS_URL: redisServer.url,
    QUEUE_PREFIX: PREFIX_1,
    CACHE_PREFIX: CACHE_PREFIX_1,
    // info: the worker's compensation and reconcile summaries (the order pipeline is paused: quiet).
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    NODE_ID: '11',
    METRICS_PORT: '0',
  };
  const config = loadConfig(env);
  const policy = retryPolicyFrom(config);
  log(
    `  worker settings: MAINTENANCE_BATCH_SIZE ${config.maintenanceBatchSize}, RECONCILE_CREATED_AFTER_MS ${config.reconcileCreatedAfterMs}, ` +
      `WORKER_WATCHDOG_MS ${config.workerWatchdogMs}, JOB_LOCK_MS ${config.jobLockMs}, DB_POOL_MAX ${config.dbPoolMax} (the maintenance jobs use at most 4)`,
  );
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`  database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const queues = benchQueues(redis, PREFIX_1);
  try {
    const merchants = benchMerchants(ZONES);
    await insertMerchants(db, merchants);
    const client = await createApiClient(db, new IdGenerator(62), `recovery bench ${new Date().toISOString()}`);

    // -- seed
    log(
      `  seeding: ${fmt(MIX.pricingFailed * 100)}% PRICING_FAILED (${fmt(MIX.escalatePricing * 100)}% of them at the budget of ${policy.budget.PRICING_FAILED}), ` +
        `${fmt(MIX.dispatchFailed * 100)}% DISPATCH_FAILED (${fmt(MIX.escalateDispatch * 100)}% at the budget of ${policy.budget.DISPATCH_FAILED}), ` +
        `the rest orphaned CREATED; multi-row INSERTs of ${fmt(SEED_CHUNK)}`,
    );
    const seeded = await seedOrders(db, { count: ORDERS, clientId: client.id, merchants, policy, label: 'seed', seed: 1 });
    log(
      `  seeded ${fmt(ORDERS)} orders in ${fmt(seeded.seconds, 1)} s (${fmt(seeded.rowsPerSec)} rows/s): ` +
        SEED_KINDS.map((k) => `${k} ${fmt(seeded.byKind[k])}`).join(', '),
    );

    // -- the worker, with the orders and dispatch queues paused (see the head of this file)
    await Promise.all([queues.orders.pause(), queues.dispatch.pause()]);
    const worker = await startProcess('worker', 'workers/orders.ts', env, /worker ready/, async () => {
      const [a, b] = await Promise.all([queues.orders.getWorkersCount(), queues.maintenance.getWorkersCount()]);
      return a >= 1 && b >= 1;
    });
    log(`  worker (workers/orders.ts) ready: pid ${worker.pid}, ${fmt(seconds(worker.startMs), 1)} s; orders and dispatch queues paused`);
    await sleep(1000);

    const cpuPids = {
      worker: [worker.pid],
      mariadbd: pidsNamed(['mariadbd', 'mysqld']),
      redis: [redisServer.serverPid() ?? -1],
    };
    const expectedCounts = {
      CREATED: seeded.byKind.pricing + seeded.byKind.orphan,
      PRICED: seeded.byKind.dispatch,
      CANCELLED: seeded.byKind['pricing-escalate'] + seeded.byKind['dispatch-escalate'],
    };

    // -- the recovery
    const cpuStart = cpuSnapshot(cpuPids);
    const t0 = performance.now();
    const enqueuedAt = Date.now();
    const compensateId = await enqueueOrderMaintenance(queues.maintenance, 'compensate', 'cli', new Date(enqueuedAt), 5000);
    const reconcileId = await enqueueOrderMaintenance(queues.maintenance, 'reconcile', 'cli', new Date(enqueuedAt), 5000);
    log(`  enqueued ${compensateId} and ${reconcileId} on the maintenance queue; the worker runs them one at a time`);

    let doneAt: number | null = null;
    let check: Part1Check | null = null;
    let lastForced = -Infinity;
    const samples: Record<string, unknown>[] = [];
    let exactChecks = 0;
    while (seconds(t0) < PART1_BOUND_S) {
      if (fleetFailure) throw new Error(fleetFailure);
      const tick = performance.now();
      const [status, ordersQ, notificationsQ, compensate, reconcile] = await Promise.all([
        statusCounts(db),
        queueCounts(queues.orders),
        queueCounts(queues.notifications),
        Job.fromId(queues.maintenance, compensateId).then((j) => (j ? j.getState() : 'missing')),
        Job.fromId(queues.maintenance, reconcileId).then((j) => (j ? j.getState() : 'missing')),
      ]);
      const t = seconds(t0);
      const failedLeft = (status.PRICING_FAILED ?? 0) + (status.DISPATCH_FAILED ?? 0);
      const moved = ORDERS - failedLeft - seeded.byKind.orphan; // the failed ones moved so far
      samples.push({ t: +t.toFixed(2), status, ordersWait: ordersQ.wait, notificationsWait: notificationsQ.wait, compensate, reconcile });
      const force = t - lastForced >= 2;
      if (force) lastForced = t;
      progress(
        `  [${fmt(t, 1)} s] failed left ${fmt(failedLeft)} (re-driven or escalated ${fmt(moved)}, ${fmt(moved / Math.max(t, 0.001))}/s) | ` +
          `CREATED ${fmt(status.CREATED ?? 0)} PRICED ${fmt(status.PRICED ?? 0)} CANCELLED ${fmt(status.CANCELLED ?? 0)} | ` +
          `orders q wait ${fmt(ordersQ.wait)} | notif q wait ${fmt(notificationsQ.wait)} | compensate ${compensate}, reconcile ${reconcile}`,
        force,
      );
      // The counts first (cheap); the exact check once they say it can pass.
      if (
        failedLeft === 0 &&
        (status.CREATED ?? 0) === expectedCounts.CREATED &&
        ordersQ.wait >= expectedCounts.CREATED &&
        notificationsQ.wait >= expectedCounts.CANCELLED
      ) {
        exactChecks += 1;
        check = await checkPart1(db, redis, queues, seeded);
        if (check.ok) {
          doneAt = performance.now(); // conservative: when the check that proved it finished
          break;
        }
      }
      if (compensate === 'failed' && reconcile === 'failed') break;
      const wait = 250 - (performance.now() - tick);
      if (wait > 0) await sleep(wait);
    }
    const cpuEnd = cpuSnapshot(cpuPids);
    const totalS = doneAt === null ? null : seconds(t0, doneAt);
    if (doneAt === null) {
      log(`  NOT every order moved within ${PART1_BOUND_S} s`);
      check = await checkPart1(db, redis, queues, seeded);
    } else {
      log(`  every order moved to its next state after ${fmt(totalS, 2)} s (checked exactly in ${fmt(check!.checkMs)} ms; ${exactChecks} exact check(s))`);
    }
    // Let the jobs finish (they may still be tidying up: the reconcile pass over PENDING notifications).
    const jobsBound = performance.now() + 60_000;
    let jobs = await Promise.all([viewJob(queues.maintenance, compensateId, enqueuedAt), viewJob(queues.maintenance, reconcileId, enqueuedAt)]);
    while (jobs.some((j) => !['completed', 'failed', 'missing'].includes(j.state)) && performance.now() < jobsBound) {
      await sleep(250);
      jobs = await Promise.all([viewJob(queues.maintenance, compensateId, enqueuedAt), viewJob(queues.maintenance, reconcileId, enqueuedAt)]);
    }
    const [compensateJob, reconcileJob] = jobs as [MaintenanceJobView, MaintenanceJobView];

    // -- what is in MySQL and Redis now
    const finalStatus = await statusCounts(db);
    const finalQueues = { orders: await queueCounts(queues.orders), dispatch: await queueCounts(queues.dispatch), notifications: await queueCounts(queues.notifications) };
    const events = (await db('order_events')
      .select('from_status', 'to_status')
      .count({ n: '*' })
      .where('actor', 'like', 'scheduler:compensate%')
      .groupBy('from_status', 'to_status')) as { from_status: string; to_status: string; n: number | string }[];
    // One INSERT INTO order_events per batch and status: its rows share CURRENT_TIMESTAMP(3), so the
    // distinct timestamps are the batches, and their spacing is the time per batch.
    const batchRows = (await db('order_events')
      .select('created_at')
      .count({ n: '*' })
      .where('actor', 'like', 'scheduler:compensate%')
      .groupBy('created_at')
      .orderBy('created_at')) as { created_at: Date; n: number | string }[];
    const batchGapsMs = batchRows.slice(1).map((row, i) => new Date(row.created_at).getTime() - new Date(batchRows[i]!.created_at).getTime());
    const batches = { count: batchRows.length, ordersPerBatch: stats(batchRows.map((r) => Number(r.n))), gapMs: stats(batchGapsMs) };
    const samplesOfJobs: Record<string, unknown>[] = [];
    for (const kind of ['pricing', 'dispatch', 'orphan', 'pricing-escalate'] as const) {
      const order = seeded.orders.find((o) => o.kind === kind);
      if (!order) continue;
      const row = (await db('orders').select('status', 'attempts', 'zone_id').where({ id: order.id }).first()) as { status: string; attempts: number; zone_id: string };
      let jobId: string;
      let job: Job | undefined;
      if (row.status === 'CREATED') {
        jobId = priceJobId(order.id, Number(row.attempts));
        job = await Job.fromId(queues.orders, jobId);
      } else if (row.status === 'CANCELLED') {
        jobId = notificationJobId(order.id, 'customer.cancelled');
        job = await Job.fromId(queues.notifications, jobId);
      } else {
        const waiting = await redis.lrange(queues.orders.keys.wait!, 0, -1);
        jobId = waiting.find((id) => id.startsWith(`dispatch-${row.zone_id}-`)) ?? `dispatch-${row.zone_id}-?`;
        job = await Job.fromId(queues.orders, jobId);
      }
      samplesOfJobs.push({
        kind,
        orderId: order.id,
        was: `${order.status} attempts ${order.attempts}`,
        now: `${row.status} attempts ${row.attempts}`,
        jobId,
        job: job ? { name: job.name, data: job.data, state: await job.getState() } : null,
      });
    }
    const cpu = cpuWindow(cpuStart, cpuEnd);
    const ordersPerSec = totalS === null ? null : ORDERS / totalS;

    log(`\n  results (part 1):`);
    log(
      `    MySQL after: ${Object.entries(finalStatus).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')} ` +
        `(expected CREATED ${fmt(expectedCounts.CREATED)}, PRICED ${fmt(expectedCounts.PRICED)}, CANCELLED ${fmt(expectedCounts.CANCELLED)})`,
    );
    log(`    order_events by the compensation: ${events.map((e) => `${e.from_status} -> ${e.to_status} ${fmt(Number(e.n))}`).join(', ')}`);
    log(
      `    Redis after: orders queue ${fmt(finalQueues.orders.wait)} waiting (paused), notifications queue ${fmt(finalQueues.notifications.wait)} waiting; ` +
        `exact check: ${check?.ok ? 'every order in its next state with its job waiting' : `FAILED ${JSON.stringify(check)}`}` +
        (check && check.strayPriceJobs ? `; ${fmt(check.strayPriceJobs)} price jobs of orders not CREATED` : ''),
    );
    for (const s of samplesOfJobs) log(`    sample ${JSON.stringify(s)}`);
    for (const job of [compensateJob, reconcileJob]) {
      log(
        `    ${job.id}: ${job.state}, attempts ${job.attemptsMade}, waited ${fmt(job.queuedMs)} ms, ran ${fmt(job.runMs)} ms` +
          (job.failedReason ? `, failed: ${job.failedReason}` : '') +
          `; returned ${JSON.stringify(job.returnvalue)}`,
      );
    }
    log(
      `    compensation batches (order_events timestamps): ${fmt(batches.count)} batches, ${fmt(batches.ordersPerBatch.p50)} orders each (median); ` +
        `one every ${fmt(batches.gapMs.p50)} ms (median; p95 ${fmt(batches.gapMs.p95)}, max ${fmt(batches.gapMs.max)})`,
    );
    for (const line of worker.notable.slice(0, 20)) log(`    worker at +${fmt((line.at - enqueuedAt) / 1000, 2)} s: ${line.msg}`);
    // The maintenance worker runs one job at a time: did the reconcile wait for the compensation?
    const watchdogReplacements = worker.notable.filter((n) => /worker stuck.*queue maintenance/.test(n.msg)).length;
    const compensationEndS = ((worker.notable.find((n) => /^compensation:/.test(n.msg) && !/^compensation: 0 due/.test(n.msg))?.at ?? NaN) - enqueuedAt) / 1000;
    const reconcileStartS = reconcileJob.queuedMs === null ? NaN : reconcileJob.queuedMs / 1000;
    const overlapped = reconcileStartS < compensationEndS;
    log(
      `    the compensation's work ended at +${fmt(compensationEndS, 2)} s; the reconcile started at +${fmt(reconcileStartS, 2)} s` +
        (overlapped
          ? ` (alongside it: the worker's watchdog replaced the busy maintenance worker ${watchdogReplacements} time(s) and the replacement took the reconcile)`
          : ' (after it, as the maintenance worker runs one job at a time)'),
    );
    log(
      `    CPU over the recovery (% of one core): worker ${fmt(cpu.percent.worker)}, mariadbd ${fmt(cpu.percent.mariadbd)}, ` +
        `redis ${fmt(cpu.percent.redis)}, this bench ${fmt(cpu.percent.bench)}; machine busy ${fmt(cpu.machineBusyPercent)}% of ${cpus().length} cores`,
    );
    log(
      `    ${fmt(ORDERS)} orders moved in ${fmt(totalS, 2)} s = ${fmt(ordersPerSec)} orders/s; target <= ${TARGET_S} s: ` +
        `${totalS !== null && totalS <= TARGET_S && check?.ok ? 'PASS' : 'FAIL'}`,
    );

    await stopProcesses(['worker']);

    // -- the baseline: one order at a time, in this process
    const baselines: Record<string, unknown>[] = [];
    if (BASELINE_ORDERS > 0) {
      for (const [i, concurrency] of BASELINE_CONCURRENCIES.entries()) {
        baselines.push(await baseline(db, redisServer.url, config, policy, { clientId: client.id, merchants, concurrency, seed: 100 + i }));
      }
    }

    return {
      settings: {
        orders: ORDERS,
        mix: MIX,
        budgets: policy.budget,
        batchSize: config.maintenanceBatchSize,
        createdAfterMs: config.reconcileCreatedAfterMs,
        workerWatchdogMs: config.workerWatchdogMs,
        jobLockMs: config.jobLockMs,
      },
      seed: { seconds: seeded.seconds, rowsPerSec: seeded.rowsPerSec, byKind: seeded.byKind },
      expected: expectedCounts,
      way: 'worker process (workers/orders.ts) running one orders.compensate and one orders.reconcile job from the maintenance queue; orders and dispatch queues paused',
      totalSeconds: totalS,
      ordersPerSec,
      targetSeconds: TARGET_S,
      verdict: totalS !== null && totalS <= TARGET_S && check?.ok ? 'PASS' : 'FAIL',
      check,
      jobs: { compensate: compensateJob, reconcile: reconcileJob },
      sequence: { compensationEndS, reconcileStartS, overlapped, watchdogReplacements },
      batches,
      finalStatus,
      finalQueues,
      events: events.map((e) => ({ from: e.from_status, to: e.to_status, n: Number(e.n) })),
      jobSamples: samplesOfJobs,
      cpu,
      worker: warningsOf(worker),
      samples,
      baselines,
    };
  } finally {
    await stopProcesses(['worker']).catch(() => undefined);
    await Promise.all(Object.values(queues).map((q) => q.close())).catch(() => undefined);
    redis.disconnect();
    await db.destroy();
    await redisServer.stop();
  }
}

/**
 * The baseline: the same re-drive, one order at a time through the single-order routine, on a new
 * sample of the same mix: a failed order goes through createOrderWriter().change() (lock, stale
 * mark, guarded UPDATE + order_events, reload, publish), then one queue.add of its job; an orphan
 * is looked up (Job.fromId) and added.
 */
async function baseline(
  db: Db,
  redisUrl: string,
  config: Config,
  policy: RetryPolicy,
  opts: { clientId: string; merchants: readonly BenchMerchant[]; concurrency: number; seed: number },
): Promise<Record<string, unknown>> {
  const label = `baseline c=${opts.concurrency}`;
  log(`\n== part 1 baseline: ${fmt(BASELINE_ORDERS)} orders of the same mix re-driven one order at a time, ${opts.concurrency} in flight (in this process)`);
  const seeded = await seedOrders(db, { count: BASELINE_ORDERS, clientId: opts.clientId, merchants: opts.merchants, policy, label, seed: opts.seed });
  const redis = createProducerRedis(config);
  redis.on('error', () => undefined);
  // A producer connection refuses commands until it is connected (no offline queue).
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const ordersQueue = createQueue(QUEUE_NAMES.orders, { connection: redis, prefix: config.queuePrefix });
  const dispatchQueue = createQueue(QUEUE_NAMES.dispatch, { connection: redis, prefix: config.queuePrefix });
  const notificationsQueue = createQueue(QUEUE_NAMES.notifications, { connection: redis, prefix: config.queuePrefix });
  const pool = createDb({ ...config, dbPoolMax: Math.max(4, Math.min(opts.concurrency, 10)) });
  const writer = createOrderWriter(pool, redis, config);
  let done = 0;
  let notMoved = 0;
  const t0 = performance.now();
  let lastForced = 0;
  try {
    await eachLimited(seeded.orders, opts.concurrency, async (order) => {
      if (order.status === 'CREATED') {
        const jobId = priceJobId(order.id, order.attempts);
        if (!(await Job.fromId(ordersQueue, jobId))) await ordersQueue.add('order.price', { orderId: order.id }, { jobId });
      } else {
        const status = order.status;
        const escalate = budgetSpent(policy, status, order.attempts);
        const to = escalate ? ('CANCELLED' as const) : RETRY_STATE[status];
        const result = await writer.change({
          orderId: order.id,
          to,
          from: [status],
          actor: 'bench:baseline',
          reason: escalate ? `escalated: ${order.attempts} re-drives of ${status} spent` : `re-drive ${order.attempts + 1} of ${policy.budget[status]}`,
          patch: escalate ? { next_attempt_at: null } : (current) => ({ attempts: current.attempts + 1, next_attempt_at: null }),
          ...(escalate ? { alsoDo: (trx) => openLedgerEntriesIn(trx, [{ orderId: order.id, kind: 'customer.cancelled' }]) } : {}),
        });
        if (result.kind !== 'done') {
          notMoved += 1;
        } else if (to === 'CREATED') {
          await ordersQueue.add('order.price', { orderId: order.id }, { jobId: priceJobId(order.id, result.order.attempts) });
        } else if (to === 'PRICED') {
          await dispatchQueue.add('dispatch.zone', { zoneId: order.zoneId }, { jobId: dispatchJobId(order.zoneId, Date.now()) });
        } else {
          const jobId = notificationJobId(order.id, 'customer.cancelled');
          await notificationsQueue.add('notify.send', { orderId: order.id, kind: 'customer.cancelled' }, { ...NOTIFICATION_JOB_OPTIONS, jobId });
        }
      }
      done += 1;
      const elapsed = seconds(t0);
      const force = elapsed - lastForced >= 3;
      if (force) lastForced = elapsed;
      progress(`  [${label}] ${fmt(done)} / ${fmt(BASELINE_ORDERS)} orders (${fmt(done / Math.max(elapsed, 0.001))}/s)`, force);
    });
    const s = seconds(t0);
    const left = await statusCounts(db, (q) => void q.whereIn('id', seeded.orders.filter((o) => o.status !== 'CREATED').map((o) => o.id)).whereIn('status', ['PRICING_FAILED', 'DISPATCH_FAILED']));
    const stillFailed = (left.PRICING_FAILED ?? 0) + (left.DISPATCH_FAILED ?? 0);
    const rate = BASELINE_ORDERS / s;
    log(
      `  ${label}: ${fmt(BASELINE_ORDERS)} orders in ${fmt(s, 2)} s = ${fmt(rate)} orders/s; ${fmt(ORDERS)} would take ${fmt(ORDERS / rate, 1)} s` +
        `; ${fmt(stillFailed)} left in a failed state, ${fmt(notMoved)} not moved`,
    );
    return { concurrency: opts.concurrency, orders: BASELINE_ORDERS, byKind: seeded.byKind, seconds: s, ordersPerSec: rate, extrapolatedSeconds: ORDERS / rate, stillFailed, notMoved };
  } finally {
    await Promise.all([ordersQueue.close(), dispatchQueue.close(), notificationsQueue.close()]).catch(() => undefined);
    redis.disconnect();
    await pool.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: recovery after a FLUSHALL under load


const DONE_STATUSES = ['DISPATCHED', 'PICKED_UP', 'DELIVERED', 'CANCELLED'];

interface FlushSample {
  readonly t: number;
  /** Orders accepted before the flush and not done yet. */
  readonly open: number;
  /** ...of which neither in a queue nor owed to compensation (in a failure state with a next attempt). */
  readonly uncovered: number;
  readonly owedToCompensation: number;
  /** Their notifications owed (PENDING ledger rows) and, of those, not on the notifications queue. */
  readonly pendingNotifications: number;
  readonly uncoveredNotifications: number;
}

/**
 * From the FLUSHALL on, every 250 ms: where the orders accepted before it are. Stops once they are
 * done and their notifications sent, or when told.
 */
class FlushTracker {
  readonly samples: FlushSample[] = [];
  preFlushDoneS: number | null = null;
  preFlushNotifiedS: number | null = null;
  private stopped = false;
  private loop: Promise<void> | undefined;

  private readonly deps: {
      db: Db;
      redis: Redis;
      ordersQueue: Queue;
      dispatchQueue: Queue;
      notificationsQueue: Queue;
      zones: readonly string[];
      mainStart: string;
      flushAt: string;
      flushPerf: number;
    };

  constructor(
    deps: {
      db: Db;
      redis: Redis;
      ordersQueue: Queue;
      dispatchQueue: Queue;
      notificationsQueue: Queue;
      zones: readonly string[];
      mainStart: string;
      flushAt: string;
      flushPerf: number;
    }) {
    this.deps = deps;
  }

  /** From the FLUSHALL until the condition held for good: the first sample after the last one that broke it. */
  private heldAfter(broken: (s: FlushSample) => boolean): number | null {
    let last = -1;
    this.samples.forEach((sample, i) => {
      if (broken(sample)) last = i;
    });
    return this.samples[last + 1]?.t ?? null;
  }

  /** Orders accepted before the flush: back in the queues (or done, or owed to compensation) for good. */
  get ordersBackS(): number | null {
    return this.heldAfter((s) => s.uncovered > 0);
  }

  /** Their notifications owed at the flush: back on the notifications queue (or sent) for good. */
  get notificationsBackS(): number | null {
    return this.heldAfter((s) => s.uncoveredNotifications > 0);
  }

  start(): void {
    this.loop = (async () => {
      let lastForced = -Infinity;
      while (!this.stopped) {
        const tick = performance.now();
        try {
          const sample = await this.take();
          this.samples.push(sample);
          const { t } = sample;
          // Done and notified stay so: the first time is the time.
          if (this.preFlushDoneS === null && sample.open === 0) this.preFlushDoneS = t;
          if (this.preFlushNotifiedS === null && sample.open === 0 && sample.pendingNotifications === 0) this.preFlushNotifiedS = t;
          const force = t - lastForced >= 2;
          if (force) lastForced = t;
          progress(
            `  [flush +${fmt(t, 2)} s] accepted before the flush: ${fmt(sample.open)} not done, ${fmt(sample.uncovered)} neither queued nor owed to compensation` +
              ` (${fmt(sample.owedToCompensation)} owed to it); notifications owed at the flush: ${fmt(sample.pendingNotifications)} pending, ${fmt(sample.uncoveredNotifications)} not queued`,
            force,
          );
          if (this.preFlushNotifiedS !== null) break;
        } catch (error) {
          log(`  bench: a flush sample failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        const wait = 250 - (performance.now() - tick);
        if (wait > 0) await sleep(wait);
      }
    })();
  }

  async take(): Promise<FlushSample> {
    const { db, redis, mainStart, flushAt } = this.deps;
    const t = +seconds(this.deps.flushPerf).toFixed(3);
    const [rows, pending, ordersLive, dispatchLive, notificationsLive] = await Promise.all([
      db('orders')
        .select('id', 'status', 'attempts', 'zone_id', 'next_attempt_at')
        .where('created_at', '>=', db.raw('?', [mainStart]))
        .where('created_at', '<', db.raw('?', [flushAt]))
        .whereNotIn('status', DONE_STATUSES) as Promise<{ id: string; status: string; attempts: number; zone_id: string; next_attempt_at: Date | null }[]>,
      db('notifications as n')
        .join('orders as o', 'o.id', 'n.order_id')
        .select('n.order_id', 'n.kind')
        .where('n.status', 'PENDING')
        .where('n.created_at', '<', db.raw('?', [flushAt]))
        .where('o.created_at', '>=', db.raw('?', [mainStart])) as Promise<{ order_id: string; kind: string }[]>,
      liveJobIds(redis, this.deps.ordersQueue),
      liveJobIds(redis, this.deps.dispatchQueue),
      liveJobIds(redis, this.deps.notificationsQueue),
    ]);
    const zonesWithRun = new Set(this.deps.zones.filter((zone) => [...dispatchLive].some((id) => id.startsWith(`dispatch-${zone}-`))));
    let uncovered = 0;
    let owed = 0;
    for (const row of rows) {
      if (row.status === 'CREATED') {
        if (!ordersLive.has(priceJobId(String(row.id), Number(row.attempts)))) uncovered += 1;
      } else if (row.status === 'PRICED') {
        if (!zonesWithRun.has(String(row.zone_id))) uncovered += 1;
      } else if ((row.status === 'PRICING_FAILED' || row.status === 'DISPATCH_FAILED') && row.next_attempt_at !== null) {
        owed += 1;
      } else {
        uncovered += 1;
      }
    }
    const uncoveredNotifications = pending.filter(
      (n) => !notificationsLive.has(notificationJobId(String(n.order_id), n.kind as 'customer.dispatched')),
    ).length;
    return { t, open: rows.length, uncovered, owedToCompensation: owed, pendingNotifications: pending.length, uncoveredNotifications };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

async function part2(): Promise<Record<string, unknown>> {
  log(`\n== part 2: recovery after a FLUSHALL under load (a private Redis; the fleet as the Procfile runs it)`);
  const redisServer = await startPrivateRedis();
  const { env: fleetEnv, webUrl, providerUrl } = await benchFleetEnv({
    mysqlUrl: MYSQL_URL_2,
    redisUrl: redisServer.url,
    queuePrefix: PREFIX_2,
    cachePrefix: CACHE_PREFIX_2,
    logLevel: LOG_LEVEL,
    extra: {
      METRICS_PORT: '0',
      DISPATCH_WINDOW_MS: process.env.DISPATCH_WINDOW_MS || '200',
      COMPENSATE_CRON: process.env.COMPENSATE_CRON || '*/2 * * * * *',
      RECONCILE_CRON: process.env.RECONCILE_CRON || '1-59/2 * * * * *',
      RECONCILE_CREATED_AFTER_MS: process.env.RECONCILE_CREATED_AFTER_MS || '3000',
      RECONCILE_STUCK_AFTER_MS: process.env.RECONCILE_STUCK_AFTER_MS || '3000',
      RECONCILE_NOTIFY_AFTER_MS: process.env.RECONCILE_NOTIFY_AFTER_MS || '5000',
      RETRY_BASE_MS: process.env.RETRY_BASE_MS || '1000',
      RETRY_MAX_MS: process.env.RETRY_MAX_MS || '10000',
      WARMUP_CRON: process.env.WARMUP_CRON ?? '',
    },
  });
  const config = loadConfig(fleetEnv);
  log(
    `  private redis-server on ${redisServer.url}; queue prefix ${PREFIX_2}; COMPENSATE_CRON "${config.compensateCron.join(';')}", ` +
      `RECONCILE_CRON "${config.reconcileCron.join(';')}", RECONCILE_CREATED_AFTER_MS ${config.reconcileCreatedAfterMs}, ` +
      `RECONCILE_STUCK_AFTER_MS ${config.reconcileStuckAfterMs}, RECONCILE_NOTIFY_AFTER_MS ${config.reconcileNotifyAfterMs}, ` +
      `RETRY_BASE_MS ${config.retryBaseMs}, DISPATCH_WINDOW_MS ${config.dispatchWindowMs}, LOG_LEVEL ${LOG_LEVEL}`,
  );
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`  database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const queues = benchQueues(redis, PREFIX_2);
  for (const q of Object.values(queues)) q.on('error', () => undefined);
  const riders = new RiderSimulator(db, RIDER_RESET_MS);
  let tracker: FlushTracker | undefined;
  try {
    const merchants = benchMerchants(ZONES);
    await insertMerchants(db, merchants);
    await insertRiders(db, merchants, RIDERS_PER_ZONE, RIDER_CAPACITY);
    const client = await createApiClient(db, new IdGenerator(63), `recovery bench ${new Date().toISOString()}`);
    log(`  ${ZONES} zones with a merchant and ${RIDERS_PER_ZONE} riders of capacity ${RIDER_CAPACITY} each; a rider simulator frees their slots every ${RIDER_RESET_MS} ms`);

    // -- the fleet
    const starts: [string, string, RegExp, () => Promise<boolean>][] = [
      ['provider', 'workers/dev-provider.ts', /dev provider ready/, () => httpOk(`${providerUrl}/control`)],
      ['web', 'workers/web.ts', /web listening/, () => httpOk(`${webUrl}/readyz`)],
      ['worker', 'workers/orders.ts', /worker ready/, async () => (await queues.orders.getWorkersCount()) >= 1 && (await queues.maintenance.getWorkersCount()) >= 1],
      ['notifier', 'workers/notifier.ts', /notifier ready/, async () => (await queues.notifications.getWorkersCount()) >= 1],
    ];
    const t0 = performance.now();
    const started = await Promise.allSettled(
      starts.map(async ([procName, file, readyLine, probe], i) => {
        // The worker at info: its compensation and reconcile summaries (logged only when they put something back).
        const env = { ...fleetEnv, NODE_ID: String(21 + i), ...(procName === 'worker' ? { LOG_LEVEL: 'info' } : {}) };
        const proc = await startProcess(procName, file, env, readyLine, probe);
        log(`  [${procName}] ${file} ready: pid ${proc.pid}, ${fmt(seconds(proc.startMs), 1)} s`);
      }),
    );
    const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    log(`  fleet ready in ${fmt(seconds(t0), 1)} s (the scheduler starts after the calibration): web ${webUrl}, dev provider ${providerUrl}`);
    riders.start();
    await sleep(1000);

    const bodies = merchants.map((m) =>
      JSON.stringify({
        merchantId: m.id,
        dropoff: { lat: +(m.lat + 0.01).toFixed(6), lng: +(m.lng + 0.01).toFixed(6), address: '88 Century Ave', phone: '+8613800000000' },
        items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
        note: 'ring twice',
      }),
    );
    const openOf = (s: Record<string, number>) => Object.entries(s).filter(([k]) => !DONE_STATUSES.includes(k)).reduce((a, [, n]) => a + n, 0);

    // -- calibration: the pipeline's capacity, measured
    const calSeconds = Math.max(1, Math.ceil(CALIBRATE_ORDERS / CALIBRATE_RATE));
    log(`\n  calibration: ${fmt(CALIBRATE_RATE * calSeconds)} orders at ${fmt(CALIBRATE_RATE)}/s, then until all are dispatched and notified (at most ${CALIBRATE_BOUND_S} s)`);
    const calStart = await mysqlNow(db);
    const calLoad = await runOrderLoad({
      url: webUrl,
      apiKey: client.key,
      keyPrefix: `cal-${Date.now().toString(36)}`,
      bodies,
      connections: Math.min(100, CALIBRATE_RATE),
      seconds: calSeconds,
      rate: { overall: CALIBRATE_RATE, stagger: true },
      counters: newLoadCounters(),
      progressLabel: 'calibration load',
    });
    // Until they are dispatched and notified: the load starts on an idle fleet (a notifier still
    // sending the calibration's notifications would delay the load's own).
    const calT = performance.now();
    let calOpen = Infinity;
    let calPending = Infinity;
    while (seconds(calT) < CALIBRATE_BOUND_S) {
      if (fleetFailure) throw new Error(fleetFailure);
      calOpen = openOf(await statusCounts(db));
      calPending = Number(((await db('notifications').count({ n: '*' }).where('status', 'PENDING')) as { n: number | string }[])[0]?.n ?? 0);
      const notificationsLeft = backlogOf(await queueCounts(queues.notifications));
      progress(
        `  [calibration drain ${fmt(seconds(calT), 1)} s] ${fmt(calOpen)} orders not dispatched yet, ${fmt(calPending)} notifications PENDING, ${fmt(notificationsLeft)} on the queue`,
        false,
      );
      if (calOpen === 0 && calPending === 0 && notificationsLeft === 0) break;
      await sleep(250);
    }
    const calDrainS = seconds(calT);
    // The rate at which the burst went through: the first 95% of the orders dispatched over the
    // time from the first one created (a straggler retried after a backoff does not set the rate).
    const calDispatchUs = (
      (await db.raw(
        `SELECT TIMESTAMPDIFF(MICROSECOND, (SELECT MIN(created_at) FROM orders WHERE created_at >= ?), e.created_at) AS us
           FROM orders o JOIN order_events e ON e.order_id = o.id AND e.to_status = 'DISPATCHED'
          WHERE o.created_at >= ? ORDER BY e.created_at`,
        [calStart, calStart],
      )) as [{ us: number | string }[]]
    )[0].map((r) => Number(r.us));
    const cal95 = Math.max(1, Math.ceil(0.95 * calDispatchUs.length));
    const calSpan = { n: calDispatchUs.length, us: calDispatchUs[cal95 - 1] ?? NaN, n95: cal95, usAll: calDispatchUs.at(-1) ?? NaN };
    const capacity = calSpan.n95 / (calSpan.us / 1e6);
    const rate = FLUSH_RATE_SETTING > 0 ? FLUSH_RATE_SETTING : Math.max(10, Math.round(capacity / 2));
    log(
      `  calibration: ${fmt(calLoad.status202)} accepted (${fmt(calLoad.status202 / calLoad.windowS)}/s), ${fmt(calSpan.n)} dispatched; the first ${fmt(calSpan.n95)} (95%) ` +
        `${fmt(calSpan.us / 1e6, 2)} s after the first order was created (all of them after ${fmt(calSpan.usAll / 1e6, 2)} s) = capacity ${fmt(capacity)} orders/s end to end` +
        `${calOpen > 0 ? ` (${fmt(calOpen)} not dispatched within the bound)` : ''}; dispatched and notified ${fmt(calDrainS, 1)} s after the burst` +
        `${calPending > 0 ? ` (${fmt(calPending)} notifications still PENDING at the bound)` : ''}; ` +
        `the load runs at ${fmt(rate)}/s${FLUSH_RATE_SETTING > 0 ? ' (BENCH_FLUSH_RATE)' : ' (half of it: the scheduler\'s ticks and a noisy machine need the margin)'}`,
    );

    // -- the scheduler: compensation and reconcile ticks from now on. Ready once its first tick is on
    // the maintenance queue (its ready line is at info).
    const schedulerProc = await startProcess('scheduler', 'workers/scheduler.ts', { ...fleetEnv, NODE_ID: '26' }, /scheduler ready/, async () => {
      const c = await queues.maintenance.getJobCounts('wait', 'active', 'completed', 'failed', 'delayed');
      return Object.values(c).some((n) => n > 0);
    });
    log(`  [scheduler] workers/scheduler.ts ready: pid ${schedulerProc.pid}, ${fmt(seconds(schedulerProc.startMs), 1)} s`);
    await sleep(2000);

    // -- the load, with the FLUSHALL at mid-run
    const loadSeconds = Math.max(10, Math.ceil(FLUSH_ORDERS / rate));
    const flushAfterS = loadSeconds / 2;
    const connections = Math.min(32, rate);
    log(`\n  load: ${fmt(rate)} orders/s for ${loadSeconds} s (${fmt(rate * loadSeconds)} orders, ${connections} connections); FLUSHALL after ${fmt(flushAfterS, 1)} s`);
    const mainStart = await mysqlNow(db);
    const counters = newLoadCounters();
    const loadStart = performance.now();
    type Flush = {
      before: string;
      at: string;
      perf: number;
      wall: number;
      accepted202: number;
      ms: number;
      statusAt: Record<string, number>;
      pendingAt: number;
      lostJobs: Record<'orders' | 'notifications' | 'maintenance', QueueCounts>;
    };
    let flush: Flush | null = null;
    const flushTimer = setTimeout(() => {
      void (async () => {
        const lostJobs = { orders: await queueCounts(queues.orders), notifications: await queueCounts(queues.notifications), maintenance: await queueCounts(queues.maintenance) };
        const before = await mysqlNow(db);
        const t = performance.now();
        await redis.flushall();
        const ms = performance.now() - t;
        const at = await mysqlNow(db);
        const perf = performance.now();
        const wall = Date.now();
        const accepted202 = counters.status202;
        tracker = new FlushTracker({ db, redis, ordersQueue: queues.orders, dispatchQueue: queues.dispatch, notificationsQueue: queues.notifications, zones: merchants.map((m) => m.zoneId), mainStart, flushAt: at, flushPerf: perf });
        tracker.start();
        const statusAt = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart).where('created_at', '<', at));
        const pendingAt = Number(
          ((await db('notifications as n').join('orders as o', 'o.id', 'n.order_id').count({ n: '*' }).where('n.status', 'PENDING').where('o.created_at', '>=', mainStart).where('o.created_at', '<', at)) as { n: number | string }[])[0]?.n ?? 0,
        );
        flush = { before, at, perf, wall, accepted202, ms, statusAt, pendingAt, lostJobs };
        log(
          `  FLUSHALL at +${fmt(seconds(loadStart), 1)} s of the load (${fmt(ms, 1)} ms; MySQL time ${at}): ${fmt(accepted202)} orders answered 202 before it; ` +
            `of the orders created before it: ${Object.entries(statusAt).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}; ${fmt(pendingAt)} notifications PENDING; ` +
            `jobs dropped (waiting/delayed/active just before): orders ${fmt(lostJobs.orders.wait)}/${fmt(lostJobs.orders.delayed)}/${fmt(lostJobs.orders.active)}, ` +
            `notifications ${fmt(lostJobs.notifications.wait)}/${fmt(lostJobs.notifications.delayed)}/${fmt(lostJobs.notifications.active)}, ` +
            `maintenance ${fmt(lostJobs.maintenance.wait)}/${fmt(lostJobs.maintenance.delayed)}/${fmt(lostJobs.maintenance.active)}`,
        );
      })().catch((error: unknown) => {
        fleetFailure = `the FLUSHALL step failed: ${error instanceof Error ? error.message : String(error)}`;
      });
    }, flushAfterS * 1000);
    const run = await runOrderLoad({
      url: webUrl,
      apiKey: client.key,
      keyPrefix: `flush-${Date.now().toString(36)}`,
      bodies,
      connections,
      seconds: loadSeconds,
      rate: { overall: rate, stagger: true },
      collectIds: true,
      counters,
      startedAt: loadStart,
      progressLabel: 'load',
    });
    clearTimeout(flushTimer);
    const loadEnd = performance.now();
    log(
      `  load done: ${fmt(run.responses)} responses in ${fmt(run.windowS, 1)} s, ${fmt(run.status202)} x 202, ${fmt(run.result.non2xx)} non-2xx, ` +
        `${fmt(run.result.errors)} errors; intake p50 ${run.result.latency.p50} ms, p99 ${run.result.latency.p99} ms`,
    );
    if (fleetFailure) throw new Error(fleetFailure);
    if (!flush) throw new Error('the FLUSHALL did not happen during the load');
    const f = flush as Flush;

    // -- until every accepted order is done and notified (bounded)
    log(`\n  drain: until every accepted order is DISPATCHED or CANCELLED and every notification SENT (at most ${PART2_DRAIN_BOUND_S} s)`);
    let allDoneAt: number | null = null;
    let allNotifiedAt: number | null = null;
    let lastForced = -Infinity;
    while (seconds(loadEnd) < PART2_DRAIN_BOUND_S) {
      if (fleetFailure) throw new Error(fleetFailure);
      const status = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart));
      const open = openOf(status);
      const pending = Number(((await db('notifications').count({ n: '*' }).where('status', 'PENDING')) as { n: number | string }[])[0]?.n ?? 0);
      if (open === 0 && allDoneAt === null) allDoneAt = performance.now();
      if (open === 0 && pending === 0) {
        allNotifiedAt = performance.now();
        break;
      }
      const t = seconds(loadEnd);
      const force = t - lastForced >= 5;
      if (force) lastForced = t;
      progress(
        `  [drain ${fmt(t, 1)} s] open ${fmt(open)} (${Object.entries(status).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}), notifications PENDING ${fmt(pending)}`,
        force,
      );
      await sleep(250);
    }
    const trackerRef = tracker as FlushTracker | undefined;
    await trackerRef?.stop();
    await riders.stop();

    // -- figures
    const finalQueues = { orders: await queueCounts(queues.orders), notifications: await queueCounts(queues.notifications), maintenance: await queueCounts(queues.maintenance) };
    await stopProcesses(['scheduler', 'web', 'worker', 'notifier']);
    let providerStats: Record<string, number> | null = null;
    let messages: { orderId: string; kind: string }[] = [];
    let listedCount = 0;
    try {
      const control = await fetch(`${providerUrl}/control`, { signal: AbortSignal.timeout(5000) });
      providerStats = ((await control.json()) as { stats: Record<string, number> }).stats;
      const listed = await fetch(`${providerUrl}/v1/messages`, { signal: AbortSignal.timeout(10_000) });
      const body = (await listed.json()) as { count: number; messages: { orderId: string; kind: string }[] };
      messages = body.messages;
      listedCount = body.count;
    } catch (error) {
      log(`  bench: could not read the dev provider: ${error instanceof Error ? error.message : String(error)}`);
    }
    await stopProcesses(['provider']);

    const perKey = new Map<string, number>();
    for (const m of messages) perKey.set(`${m.orderId}:${m.kind}`, (perKey.get(`${m.orderId}:${m.kind}`) ?? 0) + 1);
    const sentTwice = [...perKey.values()].filter((n) => n > 1).length;
    const ledger = Object.fromEntries(
      ((await db('notifications').select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: number | string }[]).map((r) => [r.status, Number(r.n)]),
    );
    const sentRows = (await db('notifications').select('order_id', 'kind').where('status', 'SENT')) as { order_id: string; kind: string }[];
    const listComplete = providerStats !== null && listedCount === providerStats.deliveries;
    const sentNotListed = listComplete ? sentRows.filter((r) => !perKey.has(`${String(r.order_id)}:${r.kind}`)).length : null;
    const listedNotSent = listComplete ? perKey.size - (sentRows.length - (sentNotListed ?? 0)) : null;
    const dispatchedMissingNotification = Number(
      (
        (await db.raw(
          `SELECT COUNT(*) AS n FROM orders o WHERE o.status IN ('DISPATCHED', 'PICKED_UP', 'DELIVERED')
             AND (SELECT COUNT(*) FROM notifications n WHERE n.order_id = o.id AND n.status = 'SENT' AND n.kind IN ('customer.dispatched', 'merchant.dispatched')) < 2`,
        )) as [{ n: number | string }[]]
      )[0][0]?.n ?? 0,
    );
    const finalStatus = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart));
    const rowIds = new Set(((await db('orders').select('id').where('created_at', '>=', mainStart)) as { id: string }[]).map((r) => String(r.id)));
    const lost = counters.ids.filter((id) => !rowIds.has(id)).length + counters.badBodies;

    // End-to-end latency (202 -> DISPATCHED, MySQL timestamps) by what the order saw of the flush.
    const latencyRows = (
      (await db.raw(
        `SELECT o.id, o.created_at < ? AS before_flush,
                e.created_at IS NOT NULL AND e.created_at < ? AS done_before_flush,
                TIMESTAMPDIFF(MICROSECOND, o.created_at, e.created_at) AS us,
                TIMESTAMPDIFF(MICROSECOND, o.created_at, n.last_sent) AS notified_us,
                n.last_sent IS NOT NULL AND n.last_sent < ? AND n.pending = 0 AS notified_before_flush
           FROM orders o
           LEFT JOIN order_events e ON e.order_id = o.id AND e.to_status = 'DISPATCHED'
           LEFT JOIN (SELECT order_id, MAX(sent_at) AS last_sent, SUM(status <> 'SENT') AS pending FROM notifications GROUP BY order_id) n ON n.order_id = o.id
          WHERE o.created_at >= ?`,
        [f.at, f.before, f.before, mainStart],
      )) as [
        {
          id: string;
          before_flush: number;
          done_before_flush: number;
          us: number | string | null;
          notified_us: number | string | null;
          notified_before_flush: number | null;
        }[],
      ]
    )[0];
    type LatencyRow = (typeof latencyRows)[number];
    // An order saw the flush if it was accepted before it and was not through the stage yet.
    const dispatchGroup = (pick: (r: LatencyRow) => boolean) => {
      const rows = latencyRows.filter(pick);
      return { dispatchMs: stats(rows.filter((r) => r.us !== null).map((r) => Number(r.us) / 1000)), notDispatched: rows.filter((r) => r.us === null).length };
    };
    const notifiedGroup = (pick: (r: LatencyRow) => boolean) => {
      const rows = latencyRows.filter(pick);
      return { notifiedMs: stats(rows.filter((r) => r.notified_us !== null).map((r) => Number(r.notified_us) / 1000)), notNotified: rows.filter((r) => r.notified_us === null).length };
    };
    const before = (r: LatencyRow) => Number(r.before_flush) === 1;
    const dispatchedBefore = (r: LatencyRow) => Number(r.done_before_flush) === 1;
    const notifiedBefore = (r: LatencyRow) => Number(r.notified_before_flush) === 1;
    const latency = {
      dispatch: {
        neverSawTheFlush: dispatchGroup((r) => !before(r) || dispatchedBefore(r)),
        doneBeforeFlush: dispatchGroup((r) => before(r) && dispatchedBefore(r)),
        createdAfterFlush: dispatchGroup((r) => !before(r)),
        sawTheFlush: dispatchGroup((r) => before(r) && !dispatchedBefore(r)),
      },
      notified: {
        neverSawTheFlush: notifiedGroup((r) => !before(r) || notifiedBefore(r)),
        sawTheFlush: notifiedGroup((r) => before(r) && !notifiedBefore(r)),
      },
    };

    const tr = trackerRef;
    const afterFlush = (at: number | null) => (at === null ? null : seconds(f.perf, at));
    const figures = {
      flushAfterLoadS: seconds(loadStart, f.perf),
      ordersBackS: tr?.ordersBackS ?? null,
      notificationsBackS: tr?.notificationsBackS ?? null,
      preFlushDoneS: tr?.preFlushDoneS ?? null,
      preFlushNotifiedS: tr?.preFlushNotifiedS ?? null,
      allDoneAfterFlushS: afterFlush(allDoneAt),
      allNotifiedAfterFlushS: afterFlush(allNotifiedAt),
      allDoneAfterLoadEndS: allDoneAt === null ? null : seconds(loadEnd, allDoneAt),
    };
    const maxUncovered = tr ? Math.max(0, ...tr.samples.map((s) => s.uncovered)) : null;
    const maxUncoveredNotifications = tr ? Math.max(0, ...tr.samples.map((s) => s.uncoveredNotifications)) : null;

    log(`\n  results (part 2):`);
    log(
      `    orders: ${fmt(run.status202)} answered 202 in the load (${fmt(f.accepted202)} before the FLUSHALL), every 202 a row: ${lost === 0 ? 'yes' : `NO, ${fmt(lost)} missing`}; ` +
        `at the end: ${Object.entries(finalStatus).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}`,
    );
    log(
      `    after the FLUSHALL: the orders accepted before it were back in the queues (or done, or owed to compensation) after ${fmt(figures.ordersBackS, 2)} s ` +
        `(at most ${fmt(maxUncovered)} neither queued nor done), their notifications back on the queue after ${fmt(figures.notificationsBackS, 2)} s ` +
        `(at most ${fmt(maxUncoveredNotifications)} not queued); all of them DISPATCHED or CANCELLED after ${fmt(figures.preFlushDoneS, 2)} s, notified after ${fmt(figures.preFlushNotifiedS, 2)} s`,
    );
    log(
      `    every accepted order done ${fmt(figures.allDoneAfterFlushS, 2)} s after the FLUSHALL (${fmt(figures.allDoneAfterLoadEndS, 2)} s after the load ended), ` +
        `every notification sent ${fmt(figures.allNotifiedAfterFlushS, 2)} s after it`,
    );
    const workerNotes = (running.get('worker')?.notable ?? exitedNotes.worker ?? []).filter((n) => n.at >= f.wall - 1000);
    for (const note of workerNotes.slice(0, 12)) log(`    worker at ${note.at >= f.wall ? '+' : ''}${fmt((note.at - f.wall) / 1000, 2)} s after the FLUSHALL: ${note.msg}`);
    if (workerNotes.length > 12) log(`    (${workerNotes.length - 12} more such lines)`);
    log(`    end to end, 202 -> DISPATCHED (MySQL timestamps):`);
    log(`      orders that never saw the flush: ${fmtStats(latency.dispatch.neverSawTheFlush.dispatchMs)}`);
    log(`        of them, dispatched before it: ${fmtStats(latency.dispatch.doneBeforeFlush.dispatchMs)}`);
    log(`        of them, created after it:     ${fmtStats(latency.dispatch.createdAfterFlush.dispatchMs)}`);
    log(`      orders in flight at the flush:    ${fmtStats(latency.dispatch.sawTheFlush.dispatchMs)}`);
    log(`    202 -> last notification sent:`);
    log(`      orders that never saw the flush: ${fmtStats(latency.notified.neverSawTheFlush.notifiedMs)}`);
    log(`      orders with notifications owed at the flush: ${fmtStats(latency.notified.sawTheFlush.notifiedMs)}`);
    log(
      `    notifications: ledger ${Object.entries(ledger).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}; dev provider ${providerStats ? `${fmt(providerStats.deliveries)} delivered, ${fmt(providerStats.duplicates)} repeats answered with the first message (not delivered again), ${fmt(providerStats.failures)} failures, ${fmt(providerStats.requests)} requests` : 'n/a'}; ` +
        `GET /v1/messages listed ${fmt(listedCount)}${listComplete ? ' (all of them)' : ' (NOT all: the list keeps the newest 10,000)'}: ` +
        `${fmt(sentTwice)} (orderId, kind) delivered more than once; SENT rows not delivered ${fmt(sentNotListed)}, delivered without a SENT row ${fmt(listedNotSent)}; ` +
        `dispatched orders without both notifications SENT: ${fmt(dispatchedMissingNotification)}`,
    );
    log(
      `    queues at the end: orders failed ${fmt(finalQueues.orders.failed)}, notifications failed ${fmt(finalQueues.notifications.failed)}, ` +
        `maintenance completed ${fmt(finalQueues.maintenance.completed)} / failed ${fmt(finalQueues.maintenance.failed)}; rider simulator ${fmt(riders.resets)} resets`,
    );

    const noDuplicates = sentTwice === 0 && (sentNotListed ?? 0) === 0 && (listedNotSent ?? 0) === 0 && ledger.SENT === providerStats?.deliveries;
    return {
      settings: {
        calibrateOrders: CALIBRATE_RATE * calSeconds,
        calibrateRate: CALIBRATE_RATE,
        flushOrders: FLUSH_ORDERS,
        rate,
        loadSeconds,
        connections,
        compensateCron: config.compensateCron,
        reconcileCron: config.reconcileCron,
        reconcileCreatedAfterMs: config.reconcileCreatedAfterMs,
        reconcileStuckAfterMs: config.reconcileStuckAfterMs,
        reconcileNotifyAfterMs: config.reconcileNotifyAfterMs,
        retryBaseMs: config.retryBaseMs,
        dispatchWindowMs: config.dispatchWindowMs,
        logLevel: LOG_LEVEL,
        zones: ZONES,
        ridersPerZone: RIDERS_PER_ZONE,
        riderCapacity: RIDER_CAPACITY,
      },
      calibration: {
        drainSeconds: calDrainS,
        accepted: calLoad.status202,
        acceptedPerSec: calLoad.status202 / calLoad.windowS,
        dispatched: calSpan.n,
        seconds95: calSpan.us / 1e6,
        secondsAll: calSpan.usAll / 1e6,
        capacityPerSec: capacity,
      },
      load: {
        windowS: run.windowS,
        status202: run.status202,
        non2xx: run.result.non2xx,
        errors: run.result.errors,
        httpLatencyMs: { p50: run.result.latency.p50, p99: run.result.latency.p99, max: run.result.latency.max },
        lost,
      },
      flush: {
        mysqlAt: f.at,
        afterLoadS: figures.flushAfterLoadS,
        flushallMs: f.ms,
        accepted202Before: f.accepted202,
        statusOfOrdersBefore: f.statusAt,
        pendingNotificationsBefore: f.pendingAt,
        queuesJustBefore: f.lostJobs,
      },
      figures,
      maxUncovered,
      maxUncoveredNotifications,
      latency,
      finalStatus,
      finalQueues,
      notifications: { ledger, provider: providerStats, listed: listedCount, listComplete, sentTwice, sentNotListed, listedNotSent, dispatchedMissingNotification, noDuplicates },
      workerAfterFlush: workerNotes.map((n) => ({ afterFlushS: (n.at - f.wall) / 1000, msg: n.msg })),
      trackerSamples: tr?.samples ?? [],
      fleet: Object.fromEntries(['provider', 'web', 'worker', 'notifier', 'scheduler'].map((n) => [n, { exit: exits.get(n) ?? null }])),
    };
  } finally {
    await (tracker as FlushTracker | undefined)?.stop().catch(() => undefined);
    await riders.stop().catch(() => undefined);
    await stopProcesses(['scheduler', 'web', 'worker', 'notifier', 'provider']).catch(() => undefined);
    await Promise.all(Object.values(queues).map((q) => q.close())).catch(() => undefined);
    redis.disconnect();
    await db.destroy();
    await redisServer.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const watchdog = setTimeout(() => {
    log(`bench: did not finish within its bound (${TOTAL_BOUND_S} s): giving up`);
    dumpOutput();
    void exitNow(1);
  }, TOTAL_BOUND_S * 1000);
  watchdog.unref();

  log(
    `bench: recovery; node ${process.version}, ${cpus().length} CPUs (shared by this bench, the worker(s), MariaDB and Redis); ` +
      `parts ${[...PARTS].join(', ')}; MySQL ${databaseName(MYSQL_URL_1)} / ${databaseName(MYSQL_URL_2)}`,
  );
  const results: Record<string, unknown> = { ...summaryHead('recovery') };
  let failed = false;
  try {
    if (PARTS.has('1')) results.part1 = await part1();
    if (PARTS.has('2')) results.part2 = await part2();
  } catch (error) {
    dumpOutput();
    failed = true;
    results.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`bench: ${String(results.error)}`);
  }

  // -- summary
  const p1 = results.part1 as
    | { totalSeconds: number | null; ordersPerSec: number | null; verdict: string; baselines: { concurrency: number; ordersPerSec: number; extrapolatedSeconds: number }[] }
    | undefined;
  const p2 = results.part2 as
    | {
        settings: { rate: number };
        calibration: { capacityPerSec: number };
        figures: Record<string, number | null>;
        latency: { dispatch: Record<string, { dispatchMs: Stats }>; notified: Record<string, { notifiedMs: Stats }> };
        notifications: { noDuplicates: boolean };
      }
    | undefined;
  log('\n== summary');
  const rows: string[][] = [];
  if (p1) {
    rows.push([`part 1: ${fmt(ORDERS)} failed/orphaned orders re-driven (worker process, batches)`, `${fmt(p1.totalSeconds, 2)} s`, `${fmt(p1.ordersPerSec)} orders/s`, `target <= ${TARGET_S} s: ${p1.verdict}`]);
    for (const b of p1.baselines) {
      rows.push([`  baseline: one order at a time, ${b.concurrency} in flight`, `${fmt(b.extrapolatedSeconds, 1)} s (extrapolated)`, `${fmt(b.ordersPerSec)} orders/s`, p1.ordersPerSec ? `batch = ${fmt(p1.ordersPerSec / b.ordersPerSec, 1)}x` : '']);
    }
  }
  if (p2) {
    const fig = p2.figures;
    rows.push([`part 2: FLUSHALL under load (${fmt(p2.settings.rate)}/s; capacity ${fmt(p2.calibration.capacityPerSec)}/s)`, `${fmt(fig.ordersBackS, 2)} s`, 'orders accepted before it back in the queues', '']);
    rows.push(['', `${fmt(fig.notificationsBackS, 2)} s`, 'their notifications back on the queue', '']);
    rows.push(['', `${fmt(fig.preFlushDoneS, 2)} s`, 'all of them DISPATCHED/CANCELLED', '']);
    rows.push(['', `${fmt(fig.allDoneAfterFlushS, 2)} s`, 'every accepted order done', '']);
    const d = p2.latency.dispatch;
    const n = p2.latency.notified;
    rows.push(['', `p50 ${fmt(d.neverSawTheFlush?.dispatchMs.p50)} / max ${fmt(d.neverSawTheFlush?.dispatchMs.max)} ms`, '202 -> DISPATCHED, never saw the flush', '']);
    rows.push(['', `p50 ${fmt(d.sawTheFlush?.dispatchMs.p50)} / max ${fmt(d.sawTheFlush?.dispatchMs.max)} ms`, '202 -> DISPATCHED, in flight at the flush', '']);
    rows.push(['', `p50 ${fmt(n.neverSawTheFlush?.notifiedMs.p50)} / max ${fmt(n.neverSawTheFlush?.notifiedMs.max)} ms`, '202 -> notified, never saw the flush', '']);
    rows.push(['', `p50 ${fmt(n.sawTheFlush?.notifiedMs.p50)} / max ${fmt(n.sawTheFlush?.notifiedMs.max)} ms`, '202 -> notified, notifications owed at the flush', '']);
    rows.push(['', p2.notifications.noDuplicates ? 'none' : 'FOUND', 'notification sent twice', '']);
  }
  if (rows.length) printTable(['', 'time', 'figure', 'verdict'], rows);

  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const file = join(ROOT, 'bench', 'results', `recovery-${stamp}.json`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  log(`summary written to ${file.slice(ROOT.length + 1)}`);
  return failed ? 1 : 0;
}

runBench(main, 'fleet');
