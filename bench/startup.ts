/**
 * Start-up cost of each Procfile process and of the CLI: wall time from spawn to the ready line,
 * CPU time spent by then, RSS two seconds after ready; for `cli --help`, wall time, CPU and peak
 * RSS to exit (GNU time), with and without npm in front.
 *
 *   npm run bench:startup [-- --runs 5] [-- --before <a clone of the older code>]
 *
 * This tree runs twice, without Node's compile cache and with it (as scripts/node sets it). --before
 * adds an older tree, run as it ran (`node --import tsx <file>` on the machine's node). The trees
 * are measured in turns (one process of each, then the next), so a load that comes and goes on a
 * shared machine falls on all alike. Its own database (courier_bench_startup, fresh), key
 * prefixes and ports (3350-3353), none of the defaults; every process is stopped with SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../shared/config.ts';
import { ROOT } from './lib/process/line-process.ts';
import { openBenchDatabase } from './lib/bench-database.ts';
import { log, printTable } from './lib/log.ts';
import { readProcCpuMs, readRssBytes } from './lib/proc-stats.ts';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Tree {
  readonly label: string;
  readonly root: string;
  readonly node: string;
  readonly nodeArgs: readonly string[];
  /** On top of the bench's environment (undefined: unset). */
  readonly env: NodeJS.ProcessEnv;
}

const PROCESSES = [
  { name: 'web', file: 'workers/web.ts', ready: /web listening/, env: {} },
  { name: 'worker', file: 'workers/orders.ts', ready: /worker ready/, env: { METRICS_PORT: '3351' } },
  { name: 'notifier', file: 'workers/notifier.ts', ready: /notifier ready/, env: { METRICS_PORT: '3352' } },
  { name: 'scheduler', file: 'workers/scheduler.ts', ready: /scheduler ready/, env: { METRICS_PORT: '3353' } },
] as const;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, before: { type: 'string' } } });
const runs = Number(values.runs);
const trees: Tree[] = [];
if (values.before) trees.push({ label: '20+tsx', root: values.before, node: 'node', nodeArgs: ['--import', 'tsx'], env: { NODE_COMPILE_CACHE: undefined } });
// This tree twice: without Node's compile cache, and with it as scripts/node sets it (warm after the first run).
trees.push({ label: '24', root: ROOT, node: process.execPath, nodeArgs: [], env: { NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: '1' } });
if (process.env.NODE_COMPILE_CACHE) trees.push({ label: '24+cache', root: ROOT, node: process.execPath, nodeArgs: [], env: {} });

const MYSQL_URL = 'mysql://root@127.0.0.1:3306/courier_bench_startup';
const PREFIX = 'courier-bench-startup';
const env: NodeJS.ProcessEnv = {
  ...process.env,
  MYSQL_URL,
  REDIS_URL,
  QUEUE_PREFIX: `{${PREFIX}}`,
  CACHE_PREFIX: `${PREFIX}-cache`,
  HOST: '127.0.0.1',
  PORT: '3350',
  NOTIFY_PROVIDER_URL: 'http://127.0.0.1:3354', // nothing is sent: no order is taken
  WARMUP_ON_START: 'false',
  LOG_FORMAT: 'json',
  LOG_LEVEL: 'info',
};

/** One Procfile process: spawn to ready line, CPU by then, RSS 2 s later; then SIGTERM. */
async function startOnce(tree: Tree, p: (typeof PROCESSES)[number]): Promise<{ readyMs: number; cpuMs: number; rssMb: number }> {
  const t0 = performance.now();
  const child = spawn(tree.node, [...tree.nodeArgs, p.file], { cwd: tree.root, env: { ...env, ...tree.env, ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tree.label} ${p.name}: not ready within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (p.ready.test(output)) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`${tree.label} ${p.name}: exited before ready:\n${output}`)));
  });
  const cpuMs = readProcCpuMs(child.pid!) ?? NaN;
  await new Promise((r) => setTimeout(r, 2000));
  const rssMb = (readRssBytes(child.pid!) ?? NaN) / 2 ** 20;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(killer);
  return { readyMs, cpuMs, rssMb };
}

/** A command to its exit under GNU time: wall, user+sys CPU, peak RSS of its largest process. */
function timeOnce(tree: Tree, command: readonly string[]): { readyMs: number; cpuMs: number; rssMb: number } {
  const run = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', ...command], { cwd: tree.root, env: { ...env, ...tree.env }, encoding: 'utf8' });
  const match = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(run.stderr);
  if (run.status !== 0 || !match) throw new Error(`${command.join(' ')} failed in ${tree.root}:\n${run.stdout}${run.stderr}`);
  const [, wall, user, sys, maxKb] = match.map(Number) as [number, number, number, number, number];
  return { readyMs: wall * 1000, cpuMs: (user + sys) * 1000, rssMb: maxKb / 1024 };
}

/** Deletes the keys the processes left under the bench's prefix (SCAN + DEL; never FLUSHALL: the Redis is shared). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    for (const pattern of [`{${prefix}}:*`, `${prefix}-cache:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('needs GNU time (/usr/bin/time: apt-get install time)');
  const { db } = await openBenchDatabase(loadConfig({ MYSQL_URL }), { fresh: true });
  await db.destroy();
  const rows = new Map<string, { readyMs: number; cpuMs: number; rssMb: number }[]>();
  const record = (key: string, sample: { readyMs: number; cpuMs: number; rssMb: number }) => rows.set(key, [...(rows.get(key) ?? []), sample]);
  try {
    for (let run = 1; run <= runs; run++) {
      log(`run ${run}/${runs}`);
      for (const p of PROCESSES) for (const tree of trees) record(`${tree.label}\t${p.name}`, await startOnce(tree, p));
      for (const tree of trees) {
        record(`${tree.label}\tnode workers/cli.ts --help`, timeOnce(tree, [tree.node, ...tree.nodeArgs, 'workers/cli.ts', '--help']));
        record(`${tree.label}\tnpm run cli -- --help`, timeOnce(tree, ['npm', 'run', '-s', 'cli', '--', '--help']));
      }
      for (const tree of trees) record(`${tree.label}\tbare node -e 0`, timeOnce(tree, [tree.node, '-e', '0']));
    }
  } finally {
    await deleteKeys(PREFIX);
  }
  log(`\nmedians of ${runs} runs (${trees.map((t) => `${t.label}: ${t.node} ${t.nodeArgs.join(' ')} in ${t.root}`).join('; ')})`);
  printTable(
    ['tree / process', 'ready or exit (ms)', 'min (ms)', 'CPU (ms)', 'RSS (MB)'],
    [...rows].map(([key, samples]) => [
      key.replace(/^([^\t]+)\t/, (_, tree: string) => tree.padEnd(9)),
      median(samples.map((s) => s.readyMs)).toFixed(0),
      Math.min(...samples.map((s) => s.readyMs)).toFixed(0),
      median(samples.map((s) => s.cpuMs)).toFixed(0),
      median(samples.map((s) => s.rssMb)).toFixed(0),
    ]),
  );
}

await main();
