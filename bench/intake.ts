/**
 * Intake bench: `npm run bench:intake`.
 *
 * In one run, and under the same load (autocannon, BENCH_CONNECTIONS connections, pipelining 1,
 * BENCH_DURATION_S seconds each after a BENCH_WARMUP_S warm-up), it benchmarks three servers, each
 * started as its own child process (`node_modules/.bin/tsx <file>`) so the load generator never
 * shares the server's event loop:
 *
 *   naive    bench/naive-server.ts    validate, one INSERT, one queue.add, 202 per request
 *   courier  bench/courier-server.ts  Courier's web runtime (createWebRuntime), the real intake
 *   hello    bench/hello-server.ts    Fastify answering a constant (the ceiling)
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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon, { type Client, type RequestParams, type Result } from 'autocannon';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig } from '../shared/config.ts';
import { createDb, databaseName, type Db } from '../shared/db.ts';
import { seedDemoData } from '../shared/demo/seed-demo-data.ts';
import { IdGenerator } from '../shared/ids.ts';
import { migrateLatest } from '../shared/migrate.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const RESULTS_FILE = join(ROOT, 'bench', 'results', 'intake-latest.json');

// ---------------------------------------------------------------------------------------------
// Settings

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

type ServerName = 'naive' | 'courier' | 'hello';
const ALL_SERVERS: readonly ServerName[] = ['naive', 'courier', 'hello'];

const DURATION_S = intEnv('BENCH_DURATION_S', 10, 1, 600);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 64, 1, 1024);
const WARMUP_S = intEnv('BENCH_WARMUP_S', 2, 0, 60);
const SERVERS = (process.env.BENCH_SERVERS || ALL_SERVERS.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map((s) => {
    if (!(ALL_SERVERS as readonly string[]).includes(s)) throw new Error(`BENCH_SERVERS: unknown server "${s}"`);
    return s as ServerName;
  });
const MYSQL_URL = process.env.BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/courier_bench';
const REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE_PREFIX = '{courier-bench}';
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR ? resolve(process.env.BENCH_CPU_PROF_DIR) : undefined;
const MERCHANT_ID = '1001'; // a demo merchant (seedDemoData)

/** Bounds: nothing here waits for ever. */
const START_TIMEOUT_MS = 60_000;
const DRAIN_BOUND_S = 15; // after the time is up, in-flight requests get this long (autocannon's own timeout is 10 s)
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
// Output

const isTty = process.stdout.isTTY === true;
let statusLineOpen = false;

function log(message: string): void {
  if (statusLineOpen) {
    process.stdout.write('\n');
    statusLineOpen = false;
  }
  console.log(message);
}

/** A progress line: rewritten in place on a terminal, printed every few seconds otherwise. */
function progress(message: string, force: boolean): void {
  if (isTty) {
    process.stdout.write(`\r\x1b[K${message}`);
    statusLineOpen = true;
  } else if (force) {
    console.log(message);
  }
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';

// ---------------------------------------------------------------------------------------------
// Child processes: each server in its own process group, none left behind

interface RunningServer {
  readonly name: ServerName;
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly output: string[];
}

const children = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // tsx and the node process it runs share the group
  } catch {
    // already gone
  }
}

function killAllChildren(): void {
  for (const child of children) killGroup(child, 'SIGKILL');
}

/**
 * Kills every server still running and waits (bounded) until they have exited and been reaped:
 * first the node process each tsx launcher runs (the launcher then reaps it and exits), then,
 * for whatever is left, the whole process group.
 */
async function killAllChildrenAndWait(boundMs = 1500): Promise<void> {
  const waitForExits = async () => {
    const pending = [...children].map(
      (child) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()))),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise<void>((r) => (timer = setTimeout(r, boundMs)))]);
    clearTimeout(timer);
  };
  for (const child of children) {
    for (const pid of child.pid === undefined ? [] : childPids(child.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await waitForExits();
  if (children.size === 0) return;
  killAllChildren();
  await waitForExits();
}

async function exitNow(code: number): Promise<never> {
  await killAllChildrenAndWait();
  process.exit(code);
}

process.on('exit', killAllChildren); // last resort; normally nothing is left by then
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`\nbench: ${signal}: stopping the servers and exiting`);
    void exitNow(130);
  });
}

function startServer(name: ServerName, file: string, env: Record<string, string>): Promise<RunningServer> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    BENCH_PARENT_PID: String(process.pid), // the server stops itself if this process dies
    ...env,
  };
  const nodeFlags: string[] = [];
  if (CPU_PROF_DIR) {
    // tsx hands Node flags to the process that runs the server; it writes the profile on exit.
    const dir = join(CPU_PROF_DIR, name);
    mkdirSync(dir, { recursive: true });
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const child = spawn(TSX, [...nodeFlags, file], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolveExit({ code, signal });
    });
  });

  const output: string[] = [];
  let shown = 0;
  const MAX_SHOWN = 15;
  return new Promise<RunningServer>((resolveStart, rejectStart) => {
    let started = false;
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      rejectStart(new Error(`${name} server did not say "listening" within ${START_TIMEOUT_MS / 1000} s:\n${output.join('\n')}`));
    }, START_TIMEOUT_MS);

    const onLine = (stream: 'out' | 'err', line: string) => {
      if (!line.trim()) return;
      output.push(line);
      if (output.length > 200) output.shift();
      const listening = /listening on (http:\/\/[^\s"]+)/.exec(line);
      if (!started && stream === 'out' && listening?.[1]) {
        started = true;
        clearTimeout(timer);
        resolveStart({ name, child, url: listening[1].replace(/\/$/, ''), exited, output });
        return;
      }
      if (shown < MAX_SHOWN) log(`  [${name} ${stream}] ${line.slice(0, 400)}`);
      else if (shown === MAX_SHOWN) log(`  [${name}] (more server output suppressed)`);
      shown += 1;
    };
    for (const [stream, readable] of [['out', child.stdout], ['err', child.stderr]] as const) {
      let buffered = '';
      readable?.setEncoding('utf8');
      readable?.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          onLine(stream, buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      });
    }
    child.once('error', (error) => {
      clearTimeout(timer);
      if (!started) rejectStart(error);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!started) {
        rejectStart(new Error(`${name} server exited (code ${code}, signal ${signal}) before listening:\n${output.join('\n')}`));
      }
    });
  });
}

/**
 * SIGTERM to the tsx process, which relays it to the node process running the server (exactly
 * once); SIGKILL to the whole group if it has not exited within the bound.
 */
async function stopServer(server: RunningServer): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return { ...(await server.exited), forced: false };
  server.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    server.exited.then((exit) => ({ ...exit, forced: false })),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  killGroup(server.child, 'SIGKILL'); // anything left in the group (normally nothing)
  if (outcome !== 'timeout') return outcome;
  log(`  [${server.name}] did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: killed`);
  return { ...(await server.exited), forced: true };
}

// ---------------------------------------------------------------------------------------------
// Load

interface LoadRun {
  readonly result: Result;
  /** First request sent to last response received, in seconds. */
  readonly windowS: number;
  readonly responses: number;
  readonly status202: number;
  /** Requests sent that got no response (cut off, timed out or lost with a connection). */
  readonly unanswered: number;
  /** True when the clean stop finished before autocannon's backstop and every request was answered. */
  readonly drained: boolean;
}

function runLoad(opts: {
  url: string;
  label: string;
  seconds: number;
  apiKey: string;
  keyPrefix: string;
  showProgress: boolean;
}): Promise<LoadRun> {
  const clients: Client[] = [];
  let sequence = 0;
  let responses = 0;
  let lastResponseAt = 0;
  let stopping = false;

  return new Promise<LoadRun>((resolveRun, rejectRun) => {
    const startedAt = performance.now();
    const instance = autocannon(
      {
        url: opts.url,
        connections: CONNECTIONS,
        pipelining: 1,
        // A backstop only: the timer below stops the load; this cuts off whatever is still out.
        duration: opts.seconds + DRAIN_BOUND_S,
        timeout: 10,
        requests: [
          {
            method: 'POST',
            path: '/v1/orders',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${opts.apiKey}`,
            },
            body: ORDER_BODY,
            setupRequest: (request: RequestParams) => {
              sequence += 1;
              request.headers = { ...request.headers, 'idempotency-key': `${opts.keyPrefix}-${sequence}` };
              return request;
            },
          },
        ],
        setupClient: (client: Client) => {
          clients.push(client);
        },
      },
      (error, result) => {
        clearTimeout(stopTimer);
        clearInterval(ticker);
        if (error) return rejectRun(error);
        const windowS = (lastResponseAt - startedAt) / 1000;
        const status202 = result.statusCodeStats['202']?.count ?? 0;
        const unanswered = result.requests.sent - responses;
        resolveRun({ result, windowS, responses, status202, unanswered, drained: stopping && unanswered === 0 });
      },
    );
    instance.on('response', () => {
      responses += 1;
      lastResponseAt = performance.now();
    });

    // The clean stop: every connection closes after the response to the request it has out,
    // so no request is cut off mid-flight (the server would have done the work uncounted).
    const stopTimer = setTimeout(() => {
      stopping = true;
      for (const client of clients) {
        if (!client.destroyed) client.responseMax = Math.max(1, client.reqsMade);
      }
    }, opts.seconds * 1000);

    let lastLogged = 0;
    const ticker = setInterval(() => {
      if (!opts.showProgress) return;
      const elapsed = (performance.now() - startedAt) / 1000;
      const left = Math.max(0, Math.ceil(opts.seconds - elapsed));
      const force = elapsed - lastLogged >= 5 || left === 0;
      if (force) lastLogged = elapsed;
      progress(
        `  [${opts.label}] ${left > 0 ? `${left} s left` : 'draining in-flight requests'}, ${fmt(responses)} responses (${fmt(responses / Math.max(elapsed, 0.001))}/s)`,
        force && !isTty,
      );
    }, 1000);
  });
}

// ---------------------------------------------------------------------------------------------
// Where the CPU goes (Linux /proc, read only; skipped elsewhere) and Courier's own batch metrics

const CLOCK_TICKS_PER_S = 100; // USER_HZ, 100 on every Linux Node supports

function readProcCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S; // utime + stime
  } catch {
    return null;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function pidsNamed(names: readonly string[]): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          return names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim());
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

type CpuGroup = 'server' | 'loadGenerator' | 'mariadb' | 'redis';

/** CPU time used so far by the server process (tsx and the node it runs), the bench, MariaDB and Redis. */
function cpuSnapshot(serverPid: number | undefined): Record<CpuGroup, number | null> {
  const sum = (pids: readonly number[]) => {
    const values = pids.map(readProcCpuMs).filter((v): v is number => v !== null);
    return values.length ? values.reduce((a, b) => a + b, 0) : null;
  };
  const own = process.cpuUsage();
  return {
    server: serverPid === undefined ? null : sum([serverPid, ...childPids(serverPid)]),
    loadGenerator: (own.user + own.system) / 1000,
    mariadb: sum(pidsNamed(['mariadbd', 'mysqld'])),
    redis: sum(pidsNamed(['redis-server'])),
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

interface IntakeMetrics {
  batches: number;
  orders: number;
  commitSeconds: number;
}

/** Courier's intake batch histograms from its /metrics (cumulative since it started). */
async function scrapeIntakeMetrics(baseUrl: string): Promise<IntakeMetrics | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return null;
    const text = await response.text();
    const value = (metric: string) => {
      const match = new RegExp(`^${metric}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
      return match?.[1] === undefined ? 0 : Number(match[1]);
    };
    return {
      batches: value('courier_intake_batch_size_count'),
      orders: value('courier_intake_batch_size_sum'),
      commitSeconds: value('courier_intake_batch_seconds_sum'),
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Database and queues

async function prepareDatabase(): Promise<{ db: Db; apiKey: string }> {
  const config = loadConfig({ MYSQL_URL, REDIS_URL });
  const server = createDb(config, { withDatabase: false });
  try {
    await server.raw('CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci', [databaseName(MYSQL_URL)]);
  } finally {
    await server.destroy();
  }
  const db = createDb(config);
  const ran = await migrateLatest(db);
  log(ran.length ? `bench: migrated ${databaseName(MYSQL_URL)}: ${ran.join(', ')}` : `bench: database ${databaseName(MYSQL_URL)} is up to date`);
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
    await new Promise((r) => setTimeout(r, 200));
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
  readonly intakeBatches: { batches: number; avgOrdersPerBatch: number; avgCommitMs: number } | null;
}

const SERVER_FILES: Record<ServerName, string> = {
  naive: 'bench/naive-server.ts',
  courier: 'bench/courier-server.ts',
  hello: 'bench/hello-server.ts',
};

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
  const server = await startServer(name, SERVER_FILES[name], {
    MYSQL_URL,
    REDIS_URL,
    QUEUE_PREFIX,
    NODE_ID: String(ALL_SERVERS.indexOf(name) + 1),
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null; forced: boolean } | undefined;
  try {
    log(`  [${name}] listening on ${server.url} (pid ${server.child.pid})`);
    let warmup: LoadRun | undefined;
    if (WARMUP_S > 0) {
      progress(`  [${name}] warm-up: ${WARMUP_S} s`, true);
      warmup = await runLoad({ url: server.url, label: `${name} warm-up`, seconds: WARMUP_S, apiKey: ctx.apiKey, keyPrefix: `${ctx.runTag}-${name}-w`, showProgress: false });
    }
    progress(`  [${name}] load: ${DURATION_S} s, ${CONNECTIONS} connections`, true);
    const metricsBefore = name === 'courier' ? await scrapeIntakeMetrics(server.url) : null;
    const cpuBefore = cpuSnapshot(server.child.pid);
    const run = await runLoad({ url: server.url, label: name, seconds: DURATION_S, apiKey: ctx.apiKey, keyPrefix: `${ctx.runTag}-${name}`, showProgress: true });
    // Taken when autocannon reports (up to 1 s after the last response, an idle tail): the CPU
    // used is that of the load, and it is expressed over the load window.
    const cpuMs = cpuDeltaMs(cpuBefore, cpuSnapshot(server.child.pid));
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
    let intakeBatches: ServerFigures['intakeBatches'] = null;
    if (metricsBefore && metricsAfter && metricsAfter.batches > metricsBefore.batches) {
      const batches = metricsAfter.batches - metricsBefore.batches;
      intakeBatches = {
        batches,
        avgOrdersPerBatch: (metricsAfter.orders - metricsBefore.orders) / batches,
        avgCommitMs: ((metricsAfter.commitSeconds - metricsBefore.commitSeconds) * 1000) / batches,
      };
      log(
        `  [${name}] intake batches during the load: ${fmt(batches)}, ${fmt(intakeBatches.avgOrdersPerBatch, 1)} orders each on average, ` +
          `${fmt(intakeBatches.avgCommitMs, 2)} ms to commit one on average`,
      );
    }

    let jobsSettled: number | null = null;
    if (intake) {
      progress(`  [${name}] waiting for the job count to settle (at most ${JOBS_SETTLE_BOUND_MS / 1000} s)`, true);
      jobsSettled = await waitForJobsToSettle(ctx.ordersQueue);
    }
    progress(`  [${name}] stopping the server (SIGTERM)`, true);
    exit = await stopServer(server);
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
    if (!exit) await stopServer(server);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

function printTable(figures: readonly ServerFigures[]): void {
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
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  log(line(header));
  for (const r of rows) log(line(r));
}

async function main(): Promise<number> {
  const bound = (WARMUP_S + DURATION_S + DRAIN_BOUND_S) * 1000 + START_TIMEOUT_MS + JOBS_SETTLE_BOUND_MS + 2 * STOP_TIMEOUT_MS;
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
  printTable(figures);
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

  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  const summary = {
    bench: 'intake',
    finishedAt: new Date().toISOString(),
    environment: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', platform: process.platform },
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
  writeFileSync(RESULTS_FILE, `${JSON.stringify(summary, round, 2)}\n`);
  log(`summary written to ${RESULTS_FILE.slice(ROOT.length + 1)}`);
  return rowCheckFailed ? 1 : 0;
}

main().then(
  (code) => exitNow(code),
  (error: unknown) => {
    log(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return exitNow(1);
  },
);
