/**
 * Phase 3, the servers under the read load: cached, not-modified, tracking and healthz (workers/web.ts
 * with ORDER_CACHE on, each under its own request: loads.ts), uncached (ORDER_CACHE off), hello and
 * hello-order (bench/reads/hello-get-server.ts), each its own process, checked once, then loaded in
 * turns; what each turn adds up to.
 */
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadConfig, type Config } from '../../shared/config.ts';
import { httpOk, startBenchProcess, stopBenchProcess, type BenchProcess } from '../lib/bench-process.ts';
import { execLine } from '../lib/fleet/fleet.ts';
import { fleetCommands } from '../lib/fleet/procfile.ts';
import { freePort } from '../lib/process/free-port.ts';
import { nodeArgsFor } from '../lib/process/line-process.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { BENCH_GROUP, cpuSnapshot, cpuWindow, mariadbPids, withChildren, type CpuGroups } from '../lib/cpu.ts';
import { summarize } from '../lib/stats.ts';
import { runGetLoad } from './get-load.ts';
import { type Load, loadOf, rightAnswer } from './loads.ts';
import type { Seeded } from './seed.ts';
import { type ServerName, ALL_SERVERS, ROUNDS, SLICE_S, SLICE_WARMUP_S, REDIS_URL, MYSQL_URL, CACHE_PREFIX, QUEUE_PREFIX, LOAD_SEED, START_TIMEOUT_MS, STOP_TIMEOUT_MS, shared } from './settings.ts';
import { type InProcessStampede, type HttpStampede, httpGet, type Reads, scrapeReads, readsBetween } from './stampede.ts';

// Phase 3: the servers, loaded in turn

/** Where the CPU goes (bench/lib/cpu.ts); machine: all cores, every process (it is shared: what the others leave is someone else's). */
export type CpuGroup = 'server' | 'loadGenerator' | 'mariadb' | 'redis' | 'machine';
export const CPU_GROUPS: readonly CpuGroup[] = ['server', 'loadGenerator', 'mariadb', 'redis', 'machine'];

/** The server under load (with its children), MariaDB, and the bench's Redis when it runs here. */
function cpuGroupsOf(serverPid: number): CpuGroups {
  return { server: withChildren(serverPid), mariadb: mariadbPids, redis: () => (shared.redisPid === null ? [] : [shared.redisPid]) };
}

export const SERVER_FILES: Record<ServerName, string> = {
  cached: 'workers/web.ts',
  'not-modified': 'workers/web.ts',
  tracking: 'workers/web.ts',
  healthz: 'workers/web.ts',
  uncached: 'workers/web.ts',
  hello: 'bench/reads/hello-get-server.ts',
  'hello-order': 'bench/reads/hello-get-server.ts',
  'hello-twin': 'bench/reads/hello-get-server.ts',
};
export const isWeb = (name: ServerName) => SERVER_FILES[name] === 'workers/web.ts';


export interface RunningServer extends BenchProcess {
  readonly url: string;
}

export function serverEnv(name: ServerName, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...(name === 'hello' || name === 'hello-twin'
      ? {}
      : name === 'hello-order'
        ? { HELLO_BODY: shared.helloOrderBody }
        : {
          MYSQL_URL,
          REDIS_URL,
          QUEUE_PREFIX,
          CACHE_PREFIX,
          ORDER_CACHE: name === 'uncached' ? 'off' : 'on',
          WARMUP_ON_START: 'false',
          NODE_ID: String(ALL_SERVERS.indexOf(name) + 1),
        }),
  };
}

export async function startServer(name: ServerName): Promise<RunningServer & { env: NodeJS.ProcessEnv }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = serverEnv(name, port);
  // The web servers run from the Procfile's web line, as production does.
  const proc = await startBenchProcess({
    name,
    ...(isWeb(name) ? { command: 'sh', args: ['-c', execLine(fleetCommands().get('web')!)] } : { command: process.execPath, args: nodeArgsFor(SERVER_FILES[name]) }),
    env,
    readyLine: isWeb(name) ? /web listening/ : /listening on http:/,
    ...(isWeb(name) ? { probe: () => httpOk(`${url}/readyz`) } : {}),
    timeoutMs: START_TIMEOUT_MS,
  });
  return Object.assign(proc, { url, env });
}

export interface Slice {
  readonly round: number;
  readonly seconds: number;
  readonly responses: number;
  readonly windowS: number;
  readonly reqPerSec: number;
  readonly wrongStatus: number;
  readonly errors: number;
  readonly drained: boolean;
}

/** One server's figures, summed over its slices of the rounds. */
export interface ServerFigures {
  readonly name: ServerName;
  readonly file: string;
  /** What it was asked (loads.ts). */
  readonly what: string;
  readonly orderCache: 'on' | 'off' | null;
  readonly l1TtlMs: number | null;
  readonly l1Max: number | null;
  readonly dbPoolMax: number | null;
  /** All responses / the sum of the slices' windows. */
  readonly reqPerSec: number;
  readonly slices: Slice[];
  /** Over every response of every slice, from autocannon's per-response time (sub-ms). */
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; average: number };
  readonly responses: number;
  /** Responses with the status its load expects (200; 304 for not-modified). */
  readonly statusRight: number;
  readonly wrongStatus: number;
  readonly statusCodes: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly windowS: number;
  readonly unanswered: number;
  readonly drained: boolean;
  readonly checkPass: { requests: number; ok: number; wrong: string[] };
  readonly warmupResponses: number | null;
  /** courier_order_reads_total deltas over the slices (web servers only). */
  readonly reads: Reads | null;
  /** CPU during the slices, in % of one core, over the time between each slice's two snapshots. */
  readonly cpuPercent: Record<CpuGroup, number | null>;
  readonly serverCpuUsPerResponse: number | null;
  readonly loadGeneratorCpuUsPerResponse: number | null;
  /** Bytes received per response, headers and body (as autocannon counts them). */
  readonly bytesPerResponse: number;
  readonly stampede: HttpStampede | null;
  readonly exit: { code: number | null; signal: string | null; forced: boolean } | null;
}

/** A server under test, with what its slices have added up so far. */
export interface ServerUnderTest {
  readonly name: ServerName;
  readonly load: Load;
  readonly proc: RunningServer & { env: NodeJS.ProcessEnv };
  readonly config: Config | null;
  readonly checkPass: { requests: number; ok: number; wrong: string[] };
  warmupResponses: number | null;
  stampede: HttpStampede | null;
  readonly slices: Slice[];
  readonly latencies: number[];
  readonly statusCodes: Record<string, number>;
  readonly cpuMs: Record<CpuGroup, number | null>;
  cpuWallS: number;
  reads: Reads | null;
  responses: number;
  statusRight: number;
  wrongStatus: number;
  errors: number;
  timeouts: number;
  bytes: number;
  windowS: number;
  unanswered: number;
  drained: boolean;
  exit: { code: number | null; signal: string | null; forced: boolean } | null;
}

/** One request of every hot order (16 at a time), as the load asks it: each answered right (loads.ts rightAnswer). */
export async function checkPass(url: string, name: ServerName, load: Load, hot: readonly string[], expected: Seeded['expected']) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const wrong: string[] = [];
  let ok = 0;
  try {
    let next = 0;
    const worker = async () => {
      while (next < hot.length) {
        const id = hot[next++]!;
        const { path, headers } = load.request(id);
        const { status, body } = await httpGet(agent, `${url}${path}`, headers);
        if (rightAnswer(name, id, expected.get(id), status, body)) ok += 1;
        else if (wrong.length < 5) wrong.push(`${id}: ${status} ${body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    agent.destroy();
  }
  return { requests: hot.length, ok, wrong };
}

export async function startUnderTest(name: ServerName, ctx: { apiKey: string; hot: readonly string[]; expected: Seeded['expected'] }): Promise<ServerUnderTest> {
  const web = isWeb(name);
  progress(`  [${name}] starting ${SERVER_FILES[name]}${web ? ` (ORDER_CACHE=${name === 'uncached' ? 'off' : 'on'})` : ''}`, true);
  const proc = await startServer(name);
  const load = loadOf(name, ctx.apiKey, ctx.expected);
  const under: ServerUnderTest = {
    name,
    load,
    proc,
    config: web ? loadConfig(proc.env) : null,
    checkPass: { requests: 0, ok: 0, wrong: [] },
    warmupResponses: null,
    stampede: null,
    slices: [],
    latencies: [],
    statusCodes: {},
    cpuMs: { server: 0, loadGenerator: 0, mariadb: 0, redis: 0, machine: 0 },
    cpuWallS: 0,
    reads: web ? { l1: 0, l2: 0, mysql: 0 } : null,
    responses: 0,
    statusRight: 0,
    wrongStatus: 0,
    errors: 0,
    timeouts: 0,
    bytes: 0,
    windowS: 0,
    unanswered: 0,
    drained: true,
    exit: null,
  };
  try {
    const check = await checkPass(proc.url, name, load, ctx.hot, ctx.expected);
    Object.assign(under.checkPass, check);
    log(
      `  [${name}] listening on ${proc.url} (pid ${proc.pid}); check pass: ${fmt(check.ok)} of ${fmt(check.requests)} hot orders answered right` +
        (check.wrong.length ? `; WRONG: ${check.wrong.join(' | ')}` : ''),
    );
  } catch (error) {
    await stopBenchProcess(proc, STOP_TIMEOUT_MS);
    throw error;
  }
  return under;
}

/** One slice of the load on one server: the load, its CPU and its read counters, added to the server's sums. */
export async function runSlice(under: ServerUnderTest, ctx: { hot: readonly string[] }, round: number): Promise<Slice> {
  const { name, proc } = under;
  const web = isWeb(name);
  const cpuGroups = cpuGroupsOf(proc.pid);
  let cpuBefore = cpuSnapshot(cpuGroups);
  let cpuFrom = performance.now();
  let readsBefore: Promise<Reads | null> = Promise.resolve(null);
  const run = await runGetLoad({
    url: proc.url,
    load: under.load,
    hot: ctx.hot,
    seconds: SLICE_S,
    unmeasuredS: SLICE_WARMUP_S,
    // The CPU and the read counters from here: the lead-in is not measured.
    onMeasuring: () => {
      cpuBefore = cpuSnapshot(cpuGroups);
      cpuFrom = performance.now();
      if (web) readsBefore = scrapeReads(proc.url);
    },
    // The same id sequence for every server in a round.
    seed: LOAD_SEED + round,
    latencies: under.latencies,
    ...(SLICE_S >= 5 ? { progressLabel: `round ${round + 1}/${ROUNDS} ${name}` } : {}),
  });
  const window = cpuWindow(cpuBefore, cpuSnapshot(cpuGroups));
  const cpuDelta: Record<CpuGroup, number | null> = {
    server: window.ms.server ?? null,
    loadGenerator: window.ms[BENCH_GROUP] ?? null,
    mariadb: window.ms.mariadb ?? null,
    redis: window.ms.redis ?? null,
    machine: window.machineBusyMs,
  };
  // autocannon reports up to a second after the last response: that tail is in both the CPU and
  // the time it is divided by.
  under.cpuWallS += (performance.now() - cpuFrom) / 1000;
  for (const group of CPU_GROUPS) {
    const sum = under.cpuMs[group];
    const delta = cpuDelta[group];
    under.cpuMs[group] = sum === null || delta === null ? null : sum + delta;
  }
  if (web) {
    const reads = readsBetween(await readsBefore, await scrapeReads(proc.url));
    under.reads = reads && under.reads ? { l1: under.reads.l1 + reads.l1, l2: under.reads.l2 + reads.l2, mysql: under.reads.mysql + reads.mysql } : null;
  }
  const r = run.result;
  under.responses += run.responses;
  under.statusRight += run.statusRight;
  under.wrongStatus += run.responses - run.statusRight;
  under.errors += r.errors;
  under.timeouts += r.timeouts;
  under.bytes += run.bytes;
  under.windowS += run.windowS;
  under.unanswered += run.unanswered;
  under.drained &&= run.drained;
  for (const [code, stats] of Object.entries(r.statusCodeStats)) under.statusCodes[code] = (under.statusCodes[code] ?? 0) + stats.count;
  const slice: Slice = {
    round: round + 1,
    seconds: SLICE_S,
    responses: run.responses,
    windowS: run.windowS,
    reqPerSec: run.responses / run.windowS,
    wrongStatus: run.responses - run.statusRight,
    errors: r.errors + r.timeouts,
    drained: run.drained,
  };
  under.slices.push(slice);
  log(
    `  round ${round + 1}/${ROUNDS} ${name.padEnd(12)} ${fmt(run.responses).padStart(8)} responses in ${fmt(run.windowS, 2)} s: ${fmt(slice.reqPerSec).padStart(6)} req/s` +
      (slice.wrongStatus || r.errors || r.timeouts ? `, wrong status ${fmt(slice.wrongStatus)}, errors ${fmt(r.errors + r.timeouts)}` : '') +
      (run.drained ? '' : `; NOT drained: ${fmt(run.unanswered)} requests got no response`),
  );
  return slice;
}

export function figuresOf(under: ServerUnderTest): ServerFigures {
  const latency = summarize(under.latencies);
  const cpu = {} as Record<CpuGroup, number | null>;
  for (const group of CPU_GROUPS) {
    const ms = under.cpuMs[group];
    cpu[group] = ms === null || under.cpuWallS <= 0 ? null : ms / 10 / under.cpuWallS;
  }
  const perResponse = (ms: number | null) => (ms === null ? null : (ms * 1000) / Math.max(1, under.responses));
  return {
    name: under.name,
    file: SERVER_FILES[under.name],
    what: under.load.what,
    orderCache: under.config?.orderCache ?? null,
    l1TtlMs: under.config?.l1TtlMs ?? null,
    l1Max: under.config?.l1Max ?? null,
    dbPoolMax: under.config?.dbPoolMax ?? null,
    reqPerSec: under.responses / under.windowS,
    slices: under.slices,
    latencyMs: { p50: latency.p50, p90: latency.p90, p99: latency.p99, max: latency.max, average: latency.n ? latency.mean : 0 },
    responses: under.responses,
    statusRight: under.statusRight,
    wrongStatus: under.wrongStatus,
    statusCodes: under.statusCodes,
    errors: under.errors,
    timeouts: under.timeouts,
    windowS: under.windowS,
    unanswered: under.unanswered,
    drained: under.drained,
    checkPass: under.checkPass,
    warmupResponses: under.warmupResponses,
    reads: under.reads,
    cpuPercent: cpu,
    serverCpuUsPerResponse: perResponse(under.cpuMs.server),
    loadGeneratorCpuUsPerResponse: perResponse(under.cpuMs.loadGenerator),
    bytesPerResponse: under.bytes / Math.max(1, under.responses),
    stampede: under.stampede,
    exit: under.exit,
  };
}

export function logServerFigures(f: ServerFigures): void {
  const pct = (v: number | null) => (v === null ? 'n/a' : `${fmt(v)}%`);
  log(
    `  [${f.name}] ${fmt(f.responses)} responses in ${fmt(f.windowS, 2)} s: ${fmt(f.reqPerSec)} req/s (rounds: ${f.slices.map((s) => fmt(s.reqPerSec)).join(', ')}), ` +
      `p50 ${fmt(f.latencyMs.p50, 2)} ms, p99 ${fmt(f.latencyMs.p99, 2)} ms, wrong status ${fmt(f.wrongStatus)}, errors ${fmt(f.errors + f.timeouts)}`,
  );
  log(
    `  [${f.name}] CPU during its slices (% of one core): server ${pct(f.cpuPercent.server)}, load generator ${pct(f.cpuPercent.loadGenerator)}, ` +
      `mariadbd ${pct(f.cpuPercent.mariadb)}, redis ${pct(f.cpuPercent.redis)}; the whole machine ${pct(f.cpuPercent.machine)} of ${cpus().length * 100}%; ` +
      `per response: server ${fmt(f.serverCpuUsPerResponse)} µs, load generator ${fmt(f.loadGeneratorCpuUsPerResponse)} µs`,
  );
  if (f.reads) {
    const total = f.reads.l1 + f.reads.l2 + f.reads.mysql;
    const share = (n: number) => `${fmt(n)} (${fmt((100 * n) / Math.max(1, total), 1)}%)`;
    log(`  [${f.name}] reads answered from (courier_order_reads_total): L1 ${share(f.reads.l1)}, L2 ${share(f.reads.l2)}, MySQL ${share(f.reads.mysql)}`);
  }
}

export function logInProcessStampede(s: InProcessStampede): void {
  log(
    `  in-process, cache ${s.cache}: ${fmt(s.readers)} concurrent reader.get(${s.orderId}) -> ${fmt(s.orderQueries)} ` +
      `quer${s.orderQueries === 1 ? 'y' : 'ies'} on orders, in ${fmt(s.ms, 1)} ms; ${s.allAnswered ? 'every read got the order' : 'SOME READS DID NOT GET THE ORDER'}`,
  );
}

export function logHttpStampede(s: HttpStampede): void {
  log(
    `  [cached] HTTP stampede: ${fmt(s.requests)} concurrent GETs of order ${s.orderId} on ${fmt(s.connectionsOpen)} open connections, ` +
      `all answered in ${fmt(s.ms)} ms, ${fmt(s.rightOrder)} x 200 with the order`,
  );
  log(
    `  [cached] courier_order_reads_total over it: mysql +${fmt(s.reads.mysql)}, l2 +${fmt(s.reads.l2)}, l1 +${fmt(s.reads.l1)}; ` +
      `${fmt(s.joinedInFlight)} requests joined the load in flight (single-flight), ${fmt(s.reads.l1)} arrived after it and found L1; ` +
      `MariaDB Com_select +${fmt(s.comSelectDelta)} (whole server, coarse)`,
  );
}

// ---------------------------------------------------------------------------------------------
