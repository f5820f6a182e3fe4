/**
 * Intake bench: `npm run bench:intake`.
 *
 * In one run, and under the same load (autocannon, BENCH_CONNECTIONS connections, pipelining 1,
 * BENCH_DURATION_S seconds each after a BENCH_WARMUP_S warm-up), it benchmarks three servers, each
 * started as its own child process (`node <file>`, plus a preload that stops it if
 * this bench dies: bench/lib/child-processes.ts) so the load generator never shares the server's
 * event loop:
 *
 *   naive    bench/naive-server.ts  validate, one INSERT, one queue.add, 202 per request
 *   courier  workers/web.ts         Courier's web process as the Procfile runs it: the real intake
 *   hello    bench/hello-server.ts  Fastify answering a constant (the ceiling)
 *
 * Each is given a free port. naive and hello are ready when they print "listening on"; Courier
 * logs its own ready line at info, under the LOG_LEVEL=warn the servers run with, so it is ready
 * when its /readyz answers.
 *
 * All three get the very same request: POST /v1/orders, the same JSON body, a real API key, and a
 * unique Idempotency-Key per request. The intake servers use a dedicated database (courier_bench,
 * created and migrated here) and queue prefix ({courier-bench}); orders, order_events and the
 * bench queues are emptied before each server's run, so runs are independent.
 *
 * The load stops cleanly: when the time is up every connection finishes the request it has in
 * flight and then closes (no request is cut off), so every response the server sent is counted.
 * After each intake run the bench checks that the rows in `orders` equal the 202 answers exactly,
 * and counts the jobs on the orders queue (polling until the count settles, then again after the
 * server has shut down, which drains its background enqueues).
 *
 * req/s is responses / load window (first request to last response); autocannon's own per-second
 * average is kept in the JSON too. Latencies are autocannon's (whole ms).
 *
 * Prints a table, the ratios, and PASS/FAIL against the target (Courier >= 4x naive req/s, p99 <=
 * 25 ms, and no non-2xx answers or errors). Exit code: 0 whatever PASS/FAIL says; 1 if a row check
 * fails or the bench itself cannot run. Writes bench/results/intake-latest.json.
 *
 * Env: BENCH_DURATION_S (10), BENCH_CONNECTIONS (64), BENCH_WARMUP_S (2, 0 = none),
 * BENCH_SERVERS (naive,courier,hello), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306/courier_bench),
 * BENCH_REDIS_URL (redis://127.0.0.1:6379), BENCH_CPU_PROF_DIR (write a V8 CPU profile of each
 * server process there, for a look at where its time goes).
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig } from '../shared/config.ts';
import { databaseName, type Db } from '../shared/db.ts';
import { seedDemoData } from '../shared/demo/seed-demo-data.ts';
import { IdGenerator } from '../shared/ids.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { openBenchDatabase } from './lib/bench-database.ts';
import { exitNow, freePort, httpOk, runBench, startBenchProcess, stopBenchProcess, type BenchProcess } from './lib/child-processes.ts';
import { benchMysqlUrl, intEnv, REDIS_URL, serversFromEnv } from './lib/env.ts';
import { intakeBatchesBetween, scrapeIntakeMetrics, type IntakeBatches } from './lib/intake-metrics.ts';
import { fmt, log, printTable, progress } from './lib/log.ts';
import { LOAD_DRAIN_BOUND_S, runOrderLoad, type LoadRun } from './lib/order-load.ts';
import { summaryHead, writeResultsFile } from './lib/results-file.ts';
import { childPids, pidsNamed, sumCpuMs } from './proc-stats.ts';

// ---------------------------------------------------------------------------------------------
// Settings

type ServerName = 'naive' | 'courier' | 'hello';
const ALL_SERVERS: readonly ServerName[] = ['naive', 'courier', 'hello'];

const DURATION_S = intEnv('BENCH_DURATION_S', 10, 1, 600);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 64, 1, 1024);
const WARMUP_S = intEnv('BENCH_WARMUP_S', 2, 0, 60);
const SERVERS = serversFromEnv(ALL_SERVERS);
const MYSQL_URL = benchMysqlUrl('courier_bench');
const QUEUE_PREFIX = '{courier-bench}';
const MERCHANT_ID = '1001'; // a demo merchant (seedDemoData)

/** Bounds: nothing here waits for ever. */
const START_TIMEOUT_MS = 60_000;
const JOBS_SETTLE_BOUND_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;

const TARGET = { minRatioVsNaive: 4, maxP99Ms: 25 } as const;

const ORDER_BODY = JSON.stringify({
  merchantId: MERCHANT_ID,
  dropoff: { lat: 31.2304, lng: 121.4737, address: '88 Century Avenue, Pudong', phone: '+86 21 5555 0101' },
  items: [
    { sku: 'NDL-1', name: 'Beef noodles', qty: 2, priceCents: 3800 },
    { sku: 'TEA-2', name: 'Jasmine tea', qty: 1, priceCents: 1200 },
  ],
  note: 'intake bench',
});

// ---------------------------------------------------------------------------------------------
// The servers: each in its own process (bench/lib/child-processes.ts)

const SERVER_FILES: Record<ServerName, string> = {
  naive: 'bench/naive-server.ts',
  courier: 'workers/web.ts',
  hello: 'bench/hello-server.ts',
};
/** The line each prints when ready (Courier's is at info: with LOG_LEVEL=warn its /readyz decides). */
const READY_LINES: Record<ServerName, RegExp> = {
  naive: /listening on http:/,
  courier: /web listening/,
  hello: /listening on http:/,
};

interface RunningServer extends BenchProcess {
  readonly url: string;
}

async function startServer(name: ServerName, env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startBenchProcess(
    {
      name,
      label: `${name} server`,
      file: SERVER_FILES[name],
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...env },
      readyLine: READY_LINES[name],
      probe: name === 'courier' ? () => httpOk(`${url}/readyz`) : undefined,
      timeoutMs: START_TIMEOUT_MS,
      suppressedNote: 'more server output suppressed',
    },
    { url },
  );
}

// ---------------------------------------------------------------------------------------------
// Load: as fast as the connections go, the same body each time (bench/lib/order-load.ts)

function runLoad(opts: { url: string; seconds: number; apiKey: string; keyPrefix: string; progressLabel?: string }): Promise<LoadRun> {
  return runOrderLoad({ ...opts, bodies: [ORDER_BODY], connections: CONNECTIONS });
}

// ---------------------------------------------------------------------------------------------
// Where the CPU goes (Linux /proc, read only; skipped elsewhere: bench/proc-stats.ts)

type CpuGroup = 'server' | 'loadGenerator' | 'mariadb' | 'redis';

/** CPU time used so far by the server process (and any process it started), the bench, MariaDB and Redis. */
function cpuSnapshot(serverPid: number): Record<CpuGroup, number | null> {
  const own = process.cpuUsage();
  return {
    server: sumCpuMs([serverPid, ...childPids(serverPid)]),
    loadGenerator: (own.user + own.system) / 1000,
    mariadb: sumCpuMs(pidsNamed(['mariadbd', 'mysqld'])),
    redis: sumCpuMs(pidsNamed(['redis-server'])),
  };
}

/** CPU ms used between two snapshots. */
function cpuDeltaMs(before: Record<CpuGroup, number | null>, after: Record<CpuGroup, number | null>) {
  const out = {} as Record<CpuGroup, number | null>;
  for (const group of ['server', 'loadGenerator', 'mariadb', 'redis'] as const) {
    const a = before[group];
    const b = after[group];
    out[group] = a === null || b === null ? null : b - a;
  }
  return out;
}

/** CPU ms over a window in seconds, as % of one core. */
function asPercent(deltaMs: Record<CpuGroup, number | null>, windowS: number) {
  const out = {} as Record<CpuGroup, number | null>;
  for (const group of ['server', 'loadGenerator', 'mariadb', 'redis'] as const) {
    const ms = deltaMs[group];
    out[group] = ms === null || windowS <= 0 ? null : ms / 10 / windowS;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Database and queues

async function prepareDatabase(): Promise<{ db: Db; apiKey: string }> {
  const config = loadConfig({ MYSQL_URL, REDIS_URL });
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: false });
  log(migrations.length ? `bench: migrated ${name}: ${migrations.join(', ')}` : `bench: database ${name} is up to date`);
  await seedDemoData(db);
  await db('api_clients').where('name', 'like', 'intake bench%').del();
  const client = await createApiClient(db, new IdGenerator(config.nodeId), `intake bench ${new Date().toISOString()}`);
  return { db, apiKey: client.key };
}

async function countRows(db: Db, table: string): Promise<number> {
  const row = (await db(table).count({ n: '*' }).first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

async function countJobs(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts();
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** Polls until the job count has not changed for a second (or the bound passes). */
async function waitForJobsToSettle(queue: Queue): Promise<number> {
  const deadline = performance.now() + JOBS_SETTLE_BOUND_MS;
  let last = await countJobs(queue);
  let stableSince = performance.now();
  while (performance.now() < deadline) {
    await sleep(200);
    const now = await countJobs(queue);
    if (now !== last) {
      last = now;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= 1000) {
      break;
    }
  }
  return last;
}

async function resetState(db: Db, queues: readonly Queue[]): Promise<void> {
  await db.raw('TRUNCATE TABLE ??', ['orders']);
  await db.raw('TRUNCATE TABLE ??', ['order_events']);
  for (const queue of queues) await queue.obliterate({ force: true });
}

// ---------------------------------------------------------------------------------------------
// One server

interface ServerFigures {
  readonly name: ServerName;
  readonly reqPerSec: number;
  readonly autocannonAvgReqPerSec: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; average: number };
  readonly responses: number;
  readonly status2xx: number;
  readonly status202: number;
  readonly non2xx: number;
  readonly statusCodes: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly windowS: number;
  readonly unanswered: number;
  readonly drained: boolean;
  readonly warmup: { responses: number; status202: number; non2xx: number; errors: number } | null;
  /** Intake servers only: rows in orders / order_events after the server stopped, jobs on the queue. */
  readonly rows: number | null;
  readonly expectedRows: number | null;
  readonly rowCheck: 'ok' | 'FAILED' | 'n/a';
  readonly orderEvents: number | null;
  readonly jobsSettled: number | null;
  readonly jobsAfterStop: number | null;
  readonly exit: { code: number | null; signal: string | null; forced: boolean };
  /** CPU used during the measured load, in % of one core (null where /proc cannot tell). */
  readonly cpuPercent: Record<CpuGroup, number | null>;
  /** Server CPU time per response, in microseconds. */
  readonly serverCpuUsPerResponse: number | null;
  /** Courier only: its intake batches during the measured load (from its /metrics). */
  readonly intakeBatches: IntakeBatches | null;
}

async function benchServer(
  name: ServerName,
  ctx: { db: Db; apiKey: string; queues: readonly Queue[]; ordersQueue: Queue; runTag: string },
): Promise<ServerFigures> {
  const intake = name !== 'hello';
  log(`\n== ${name}: ${SERVER_FILES[name]}`);
  if (intake) {
    progress(`  [${name}] emptying orders, order_events and the ${QUEUE_PREFIX} queues`, true);
    await resetState(ctx.db, ctx.queues);
  }
  progress(`  [${name}] starting the server process`, true);
  const server = await startServer(name, {
    MYSQL_URL,
    REDIS_URL,
    QUEUE_PREFIX,
    NODE_ID: String(ALL_SERVERS.indexOf(name) + 1),
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null; forced: boolean } | undefined;
  try {
    log(`  [${name}] listening on ${server.url} (pid ${server.pid})`);
    let warmup: LoadRun | undefined;
    if (WARMUP_S > 0) {
      progress(`  [${name}] warm-up: ${WARMUP_S} s`, true);
      warmup = await runLoad({ url: server.url, seconds: WARMUP_S, apiKey: ctx.apiKey, keyPrefix: `${ctx.runTag}-${name}-w` });
    }
    progress(`  [${name}] load: ${DURATION_S} s, ${CONNECTIONS} connections`, true);
    const metricsBefore = name === 'courier' ? await scrapeIntakeMetrics(server.url) : null;
    const cpuBefore = cpuSnapshot(server.pid);
    const run = await runLoad({ url: server.url, seconds: DURATION_S, apiKey: ctx.apiKey, keyPrefix: `${ctx.runTag}-${name}`, progressLabel: name });
    // Taken when autocannon reports (up to 1 s after the last response, an idle tail): the CPU
    // used is that of the load, and it is expressed over the load window.
    const cpuMs = cpuDeltaMs(cpuBefore, cpuSnapshot(server.pid));
    const cpu = asPercent(cpuMs, run.windowS);
    const metricsAfter = name === 'courier' ? await scrapeIntakeMetrics(server.url) : null;
    log(
      `  [${name}] load done: ${fmt(run.responses)} responses in ${fmt(run.windowS, 2)} s` +
        (run.drained ? ', every request answered' : `, NOT drained: ${fmt(run.unanswered)} requests got no response`),
    );
    const pct = (v: number | null) => (v === null ? 'n/a' : `${fmt(v)}%`);
    log(
      `  [${name}] CPU during the load (% of one core): server ${pct(cpu.server)}, load generator ${pct(cpu.loadGenerator)}, ` +
        `mariadbd ${pct(cpu.mariadb)}, redis ${pct(cpu.redis)}` +
        (cpuMs.server === null ? '' : `; server CPU per response: ${fmt((cpuMs.server * 1000) / Math.max(1, run.responses))} µs`),
    );
    const intakeBatches = intakeBatchesBetween(metricsBefore, metricsAfter);
    if (intakeBatches) {
      log(
        `  [${name}] intake batches during the load: ${fmt(intakeBatches.batches)}, ${fmt(intakeBatches.avgOrdersPerBatch, 1)} orders each on average, ` +
          `${fmt(intakeBatches.avgCommitMs, 2)} ms to commit one on average`,
      );
    }

    let jobsSettled: number | null = null;
    if (intake) {
      progress(`  [${name}] waiting for the job count to settle (at most ${JOBS_SETTLE_BOUND_MS / 1000} s)`, true);
      jobsSettled = await waitForJobsToSettle(ctx.ordersQueue);
    }
    progress(`  [${name}] stopping the server (SIGTERM)`, true);
    exit = await stopBenchProcess(server, STOP_TIMEOUT_MS);
    if (exit.code !== 0) log(`  [${name}] exited with code ${exit.code}, signal ${exit.signal}`);

    const r = run.result;
    const warm = warmup
      ? { responses: warmup.responses, status202: warmup.status202, non2xx: warmup.result.non2xx, errors: warmup.result.errors }
      : null;
    let rows: number | null = null;
    let expectedRows: number | null = null;
    let orderEvents: number | null = null;
    let jobsAfterStop: number | null = null;
    let rowCheck: ServerFigures['rowCheck'] = 'n/a';
    if (intake) {
      rows = await countRows(ctx.db, 'orders');
      orderEvents = await countRows(ctx.db, 'order_events');
      jobsAfterStop = await countJobs(ctx.ordersQueue);
      expectedRows = run.status202 + (warm?.status202 ?? 0);
      rowCheck = rows === expectedRows ? 'ok' : 'FAILED';
      log(
        `  [${name}] rows in orders: ${fmt(rows)}, 202 answers: ${fmt(expectedRows)}${warm ? ` (${fmt(warm.status202)} in the warm-up)` : ''}: ${rowCheck === 'ok' ? 'every 202 is a row' : 'MISMATCH'}; jobs on the queue: ${fmt(jobsAfterStop)}` +
          (jobsSettled !== jobsAfterStop ? ` (${fmt(jobsSettled ?? 0)} when the count settled, before the stop)` : ''),
      );
    }
    return {
      name,
      reqPerSec: run.responses / run.windowS,
      autocannonAvgReqPerSec: r.requests.average,
      latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, average: r.latency.average },
      responses: run.responses,
      status2xx: r['2xx'],
      status202: run.status202,
      non2xx: r.non2xx,
      statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
      errors: r.errors,
      timeouts: r.timeouts,
      windowS: run.windowS,
      unanswered: run.unanswered,
      drained: run.drained,
      warmup: warm,
      rows,
      expectedRows,
      rowCheck,
      orderEvents,
      jobsSettled,
      jobsAfterStop,
      exit: { code: exit.code, signal: exit.signal, forced: exit.forced },
      cpuPercent: cpu,
      serverCpuUsPerResponse: cpuMs.server === null ? null : (cpuMs.server * 1000) / Math.max(1, run.responses),
      intakeBatches,
    };
  } finally {
    if (!exit) await stopBenchProcess(server, STOP_TIMEOUT_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

function printResults(figures: readonly ServerFigures[]): void {
  const header = ['server', 'req/s', 'p50 ms', 'p99 ms', 'responses', '2xx', 'non-2xx', 'errors', 'timeouts', 'rows = 202s', 'jobs'];
  const rows = figures.map((f) => [
    f.name,
    fmt(f.reqPerSec),
    fmt(f.latencyMs.p50),
    fmt(f.latencyMs.p99),
    fmt(f.responses),
    fmt(f.status2xx),
    fmt(f.non2xx),
    fmt(f.errors),
    fmt(f.timeouts),
    f.rowCheck === 'n/a' ? 'n/a' : `${fmt(f.rows ?? 0)} ${f.rowCheck === 'ok' ? 'ok' : `!= ${fmt(f.expectedRows ?? 0)} FAILED`}`,
    f.jobsAfterStop === null ? 'n/a' : fmt(f.jobsAfterStop),
  ]);
  printTable(header, rows, '');
}

async function main(): Promise<number> {
  const bound = (WARMUP_S + DURATION_S + LOAD_DRAIN_BOUND_S) * 1000 + START_TIMEOUT_MS + JOBS_SETTLE_BOUND_MS + 2 * STOP_TIMEOUT_MS;
  const watchdog = setTimeout(() => {
    log(`bench: did not finish within its bound (${Math.round((SERVERS.length * bound + 120_000) / 1000)} s): giving up`);
    void exitNow(1);
  }, SERVERS.length * bound + 120_000);
  watchdog.unref();

  log(
    `bench: intake, ${SERVERS.join(', ')}; ${DURATION_S} s each (after a ${WARMUP_S} s warm-up), ${CONNECTIONS} connections, pipelining 1; ` +
      `node ${process.version}, ${cpus().length} CPUs (shared by the load generator, the server, MariaDB and Redis)`,
  );
  const { db, apiKey } = await prepareDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const queues = Object.values(QUEUE_NAMES).map((queueName) => new Queue(queueName, { connection: redis, prefix: QUEUE_PREFIX }));
  const ordersQueue = queues.find((q) => q.name === QUEUE_NAMES.orders)!;
  const runTag = Date.now().toString(36);

  const figures: ServerFigures[] = [];
  try {
    for (const name of SERVERS) figures.push(await benchServer(name, { db, apiKey, queues, ordersQueue, runTag }));
    // Leave nothing behind in Redis: the bench queues are emptied (the tables keep the last run's rows).
    for (const queue of queues) await queue.obliterate({ force: true });
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
    await db.destroy();
  }

  const by = (name: ServerName) => figures.find((f) => f.name === name);
  const naive = by('naive');
  const courier = by('courier');
  const hello = by('hello');
  const ratioVsNaive = courier && naive ? courier.reqPerSec / naive.reqPerSec : null;
  const ratioVsHello = courier && hello ? courier.reqPerSec / hello.reqPerSec : null;

  log('\n== results');
  printResults(figures);
  log('');
  log(`Courier / naive req/s: ${ratioVsNaive === null ? 'n/a' : `${fmt(ratioVsNaive, 2)}x`}`);
  log(`Courier / hello req/s: ${ratioVsHello === null ? 'n/a' : `${fmt(ratioVsHello, 2)}x`}`);

  const reasons: string[] = [];
  let verdict: 'PASS' | 'FAIL' | 'n/a' = 'n/a';
  if (courier && naive && ratioVsNaive !== null) {
    if (ratioVsNaive < TARGET.minRatioVsNaive) reasons.push(`req/s is ${fmt(ratioVsNaive, 2)}x naive, under ${TARGET.minRatioVsNaive}x`);
    if (courier.latencyMs.p99 > TARGET.maxP99Ms) reasons.push(`p99 is ${courier.latencyMs.p99} ms, over ${TARGET.maxP99Ms} ms`);
    if (courier.non2xx > 0) reasons.push(`${courier.non2xx} non-2xx answers`);
    if (courier.errors > 0) reasons.push(`${courier.errors} errors/timeouts`);
    verdict = reasons.length === 0 ? 'PASS' : 'FAIL';
    log(
      `${verdict}: target Courier >= ${TARGET.minRatioVsNaive}x naive req/s with p99 <= ${TARGET.maxP99Ms} ms (and no non-2xx or errors)` +
        (reasons.length ? `: ${reasons.join('; ')}` : `: ${fmt(ratioVsNaive, 2)}x, p99 ${courier.latencyMs.p99} ms`),
    );
  } else {
    log('PASS/FAIL: n/a (needs both the naive and the courier servers)');
  }

  const rowCheckFailed = figures.some((f) => f.rowCheck === 'FAILED');
  const undrained = figures.filter((f) => !f.drained).map((f) => f.name);
  if (undrained.length) log(`note: the load did not stop cleanly for ${undrained.join(', ')} (requests were cut off)`);
  log(rowCheckFailed ? 'ROW CHECK FAILED: rows in orders differ from the 202 answers' : 'row check: every 202 answer is a row in orders, and nothing else is');

  const summary = {
    ...summaryHead('intake'),
    settings: {
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      connections: CONNECTIONS,
      pipelining: 1,
      mysqlDatabase: databaseName(MYSQL_URL),
      queuePrefix: QUEUE_PREFIX,
      request: { method: 'POST', path: '/v1/orders', bodyBytes: Buffer.byteLength(ORDER_BODY), uniqueIdempotencyKey: true },
      reqPerSecDefinition: 'responses / (last response - first request), measured load only (not the warm-up)',
    },
    servers: Object.fromEntries(figures.map((f) => [f.name, f])),
    ratios: { courierOverNaive: ratioVsNaive, courierOverHello: ratioVsHello },
    target: { ...TARGET, verdict, reasons },
    rowCheck: rowCheckFailed ? 'FAILED' : 'ok',
  };
  const round = (_key: string, value: unknown) => (typeof value === 'number' && !Number.isInteger(value) ? Math.round(value * 100) / 100 : value);
  writeResultsFile('intake', `${JSON.stringify(summary, round, 2)}\n`);
  return rowCheckFailed ? 1 : 0;
}

runBench(main, 'servers');
