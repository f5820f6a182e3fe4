/**
 * One server under the load: a warm-up, the measured load (autocannon, every request answered
 * before the stop), CPU per process over it, Courier's own batch figures, and for the servers that
 * write orders, the rows in MySQL against the 202 answers and the jobs on the orders queue.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Db } from '../../shared/db.ts';
import { stopBenchProcess } from '../lib/bench-process.ts';
import { cpuSnapshot, cpuWindow, mariadbPids, withChildren } from '../lib/cpu.ts';
import { intakeBatchesBetween, scrapeIntakeMetrics, type IntakeBatches } from '../lib/intake-metrics.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { runOrderLoad, type LoadRun } from '../lib/order-load.ts';
import { pidsNamed } from '../lib/proc-stats.ts';
import { isIntake, startServer, type ServerName } from './servers.ts';

const JOBS_SETTLE_BOUND_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;

export interface ServerFigures {
  readonly name: ServerName;
  readonly reqPerSec: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; average: number };
  readonly responses: number;
  readonly status202: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly windowS: number;
  readonly drained: boolean;
  /** Writing servers only: rows in orders after the stop against the 202s (warm-up included), jobs on the queue. */
  readonly rows: number | null;
  readonly expectedRows: number | null;
  readonly rowCheck: 'ok' | 'FAILED' | 'n/a';
  readonly jobs: number | null;
  readonly cpuPercent: Record<string, number | null>;
  readonly serverCpuUsPerResponse: number | null;
  readonly intakeBatches: IntakeBatches | null;
}

export interface MeasureContext {
  readonly db: Db;
  readonly apiKey: string;
  readonly ordersQueue: Queue;
  readonly reset: () => Promise<void>;
  readonly env: NodeJS.ProcessEnv;
  readonly body: string;
  readonly seconds: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly runTag: string;
}

async function countJobs(queue: Queue): Promise<number> {
  return Object.values(await queue.getJobCounts()).reduce((sum, n) => sum + n, 0);
}

/** Polls until the job count has not changed for a second (or the bound passes). */
async function jobsSettled(queue: Queue): Promise<number> {
  const deadline = performance.now() + JOBS_SETTLE_BOUND_MS;
  let last = await countJobs(queue);
  let stableSince = performance.now();
  while (performance.now() < deadline) {
    await sleep(200); // poll
    const now = await countJobs(queue);
    if (now !== last) [last, stableSince] = [now, performance.now()];
    else if (performance.now() - stableSince >= 1000) break;
  }
  return last;
}

export async function measureServer(name: ServerName, ctx: MeasureContext): Promise<ServerFigures> {
  const writes = isIntake(name);
  log(`\n== ${name}`);
  if (writes) await ctx.reset();
  const server = await startServer(name, ctx.env);
  const load = (seconds: number, tag: string, label?: string): Promise<LoadRun> =>
    runOrderLoad({ url: server.url, apiKey: ctx.apiKey, keyPrefix: `${ctx.runTag}-${name}-${tag}`, bodies: [ctx.body], connections: ctx.connections, seconds, ...(label ? { progressLabel: label } : {}) });
  try {
    log(`  [${name}] listening on ${server.url} (pid ${server.pid})`);
    const warmup = ctx.warmupS > 0 ? await load(ctx.warmupS, 'w') : null;
    const groups = { server: withChildren(server.pid), mariadbd: mariadbPids, redis: () => pidsNamed(['redis-server']) };
    const metricsBefore = name === 'courier' ? await scrapeIntakeMetrics(server.url) : null;
    const cpuFrom = cpuSnapshot(groups);
    const run = await load(ctx.seconds, 'm', name);
    const cpu = cpuWindow(cpuFrom, cpuSnapshot(groups));
    const intakeBatches = intakeBatchesBetween(metricsBefore, name === 'courier' ? await scrapeIntakeMetrics(server.url) : null);
    const serverMs = cpu.ms.server ?? null;
    log(
      `  [${name}] ${fmt(run.responses)} responses in ${fmt(run.windowS, 2)} s${run.drained ? '' : ` (NOT drained: ${fmt(run.unanswered)} unanswered)`}; ` +
        `CPU (% of one core): ${Object.entries(cpu.percent).map(([g, p]) => `${g} ${fmt(p)}`).join(', ')}` +
        (serverMs === null ? '' : `; server ${fmt((serverMs * 1000) / Math.max(1, run.responses))} µs per response`),
    );
    let rows: number | null = null;
    let jobs: number | null = null;
    if (writes) {
      progress(`  [${name}] waiting for the job count to settle`, true);
      await jobsSettled(ctx.ordersQueue);
    }
    await stopBenchProcess(server, STOP_TIMEOUT_MS);
    const expectedRows = writes ? run.status202 + (warmup?.status202 ?? 0) : null;
    if (writes) {
      rows = Number(((await ctx.db('orders').count({ n: '*' }).first()) as { n: number | string } | undefined)?.n ?? 0);
      jobs = await countJobs(ctx.ordersQueue);
      log(`  [${name}] rows in orders ${fmt(rows)}, 202 answers ${fmt(expectedRows)}: ${rows === expectedRows ? 'every 202 is a row' : 'MISMATCH'}; jobs ${fmt(jobs)}`);
    }
    const r = run.result;
    return {
      name,
      reqPerSec: run.responses / run.windowS,
      latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, average: r.latency.average },
      responses: run.responses,
      status202: run.status202,
      non2xx: r.non2xx,
      errors: r.errors + r.timeouts,
      windowS: run.windowS,
      drained: run.drained,
      rows,
      expectedRows,
      rowCheck: writes ? (rows === expectedRows ? 'ok' : 'FAILED') : 'n/a',
      jobs,
      cpuPercent: cpu.percent,
      serverCpuUsPerResponse: serverMs === null ? null : (serverMs * 1000) / Math.max(1, run.responses),
      intakeBatches,
    };
  } finally {
    await stopBenchProcess(server, STOP_TIMEOUT_MS);
  }
}
