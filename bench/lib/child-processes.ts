/**
 * The processes a bench starts (the servers under test, the fleet) and the bench's own exit:
 * each process runs as `node --import bench/exit-with-parent-preload.ts <file>` in a
 * process group of its own, is ready when it logs its ready line or a probe from outside says so,
 * stops with a SIGTERM (SIGKILL to its group after a bound), and none is left behind when the bench
 * exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CPU_PROF_DIR } from './env.ts';
import { log } from './log.ts';

/** The repository's root: the processes' working directory, and what their files are relative to. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Stops each process if the bench dies without stopping it (it passes its pid as BENCH_PARENT_PID). */
const PRELOAD = pathToFileURL(join(ROOT, 'bench', 'exit-with-parent-preload.ts')).href;

export type Exit = { code: number | null; signal: NodeJS.Signals | null };
export type Stream = 'out' | 'err';

export interface BenchProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** Its last 200 lines of output. */
  readonly output: string[];
  /** performance.now() when it was spawned. */
  readonly startMs: number;
  /** Set when the bench stops it: an exit from then on is expected. */
  stopping: boolean;
}

export interface StartOptions<P extends BenchProcess> {
  /** Its name in the bench's output and the folder of its CPU profile (BENCH_CPU_PROF_DIR). */
  readonly name: string;
  /** Its name in the errors when it does not start, e.g. "naive server" (default: name). */
  readonly label?: string;
  /** The entrypoint, relative to the repository's root. */
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  /** The line it logs when ready; never echoed. */
  readonly readyLine: RegExp;
  /** Ready also when this says so (for a process whose ready line is below its log level). */
  readonly probe?: () => Promise<boolean>;
  readonly timeoutMs: number;
  /** What the note after the first lines of its output that are echoed says, e.g. "more server output suppressed". */
  readonly suppressedNote: string;
  /** Sees every line of its output (stdout or stderr) before it is echoed. */
  readonly onLine?: (proc: P, stream: Stream, line: string) => void;
}

const children = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function killAllChildren(): void {
  for (const child of children) killGroup(child, 'SIGKILL');
}

async function killAllChildrenAndWait(boundMs = 2000): Promise<void> {
  const pending = [...children].map(
    (child) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()))),
  );
  killAllChildren();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(pending), new Promise<void>((r) => (timer = setTimeout(r, boundMs)))]);
  clearTimeout(timer);
}

/** Kills every process the bench started, waits (bounded) until they are reaped, and exits. */
export async function exitNow(code: number): Promise<never> {
  await killAllChildrenAndWait();
  process.exit(code);
}

/**
 * Runs a bench's main and exits with the code it answers (1 if it throws, after printing why),
 * every process it started stopped first; likewise on SIGINT, SIGTERM or SIGHUP (code 130).
 * what: what the signal message says it stops ("servers", "fleet").
 */
export function runBench(main: () => Promise<number>, what: string): void {
  process.on('exit', killAllChildren); // last resort; normally nothing is left by then
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      log(`\nbench: ${signal}: stopping the ${what} and exiting`);
      void exitNow(130);
    });
  }
  main().then(
    (code) => exitNow(code),
    (error: unknown) => {
      log(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return exitNow(1);
    },
  );
}

/**
 * Starts a process and answers it once ready. Its first 15 lines of output (other than the ready
 * line) are echoed, so a start-up error shows; the rest is kept, the last 200 lines in output.
 * extra: fields of the bench's own for the process, there from the start (onLine sees them).
 */
export function startBenchProcess<E extends object>(opts: StartOptions<BenchProcess & E>, extra: E): Promise<BenchProcess & E> {
  const { name, file, readyLine, probe, timeoutMs } = opts;
  const label = opts.label ?? name;
  const startMs = performance.now();
  const nodeFlags: string[] = [];
  if (CPU_PROF_DIR) {
    // Written when the process exits (its graceful SIGTERM path ends in process.exit).
    const dir = join(CPU_PROF_DIR, name);
    mkdirSync(dir, { recursive: true });
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const child = spawn(process.execPath, [...nodeFlags, '--import', PRELOAD, file], {
    cwd: ROOT,
    env: { ...opts.env, BENCH_PARENT_PID: String(process.pid) }, // it stops itself if this process dies
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  const exited = new Promise<Exit>((resolveExit) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolveExit({ code, signal });
    });
  });
  const output: string[] = [];
  const proc: BenchProcess & E = { ...extra, name, child, pid: child.pid ?? -1, exited, output, startMs, stopping: false };
  let shown = 0;
  const MAX_SHOWN = 15;
  let sawReadyLine = false;

  return new Promise<BenchProcess & E>((resolveStart, rejectStart) => {
    let started = false;
    const onLine = (stream: Stream, line: string) => {
      if (!line.trim()) return;
      output.push(line);
      if (output.length > 200) output.shift();
      opts.onLine?.(proc, stream, line);
      if (readyLine.test(line)) {
        sawReadyLine = true;
        return;
      }
      if (shown < MAX_SHOWN) log(`  [${name} ${stream}] ${line.slice(0, 400)}`);
      else if (shown === MAX_SHOWN) log(`  [${name}] (${opts.suppressedNote})`);
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
      if (!started) rejectStart(error);
    });
    void exited.then(({ code, signal }) => {
      if (!started) rejectStart(new Error(`${label} exited (code ${code}, signal ${signal}) before it was ready:\n${output.join('\n')}`));
    });
    void (async () => {
      const deadline = performance.now() + timeoutMs;
      while (!started && child.exitCode === null && child.signalCode === null) {
        if (performance.now() > deadline) {
          killGroup(child, 'SIGKILL');
          rejectStart(new Error(`${label} was not ready within ${timeoutMs / 1000} s:\n${output.join('\n')}`));
          return;
        }
        const ready = sawReadyLine || (probe !== undefined && (await probe().catch(() => false)));
        if (ready) {
          started = true;
          resolveStart(proc);
          return;
        }
        await sleep(200);
      }
    })();
  });
}

/** SIGTERM to the process itself; SIGKILL to its group if it has not exited within the bound. */
export async function stopBenchProcess(proc: BenchProcess, boundMs: number): Promise<Exit & { forced: boolean; seconds: number }> {
  proc.stopping = true;
  const t0 = performance.now();
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return { ...(await proc.exited), forced: false, seconds: 0 };
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    proc.exited.then((exit) => ({ ...exit, forced: false })),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), boundMs))),
  ]);
  clearTimeout(timer);
  killGroup(proc.child, 'SIGKILL'); // anything left in the group (normally nothing)
  const seconds = (performance.now() - t0) / 1000;
  if (outcome !== 'timeout') return { ...outcome, seconds };
  log(`  [${proc.name}] did not exit within ${boundMs / 1000} s of SIGTERM: killed`);
  return { ...(await proc.exited), forced: true, seconds };
}

/** A TCP port free on 127.0.0.1 right now (for a process that is told its port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r, j) => server.once('error', j).listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (typeof address !== 'object' || !address) throw new Error('could not find a free port');
  return address.port;
}

/** Whether a GET answers 2xx within a second (throws when it cannot connect). */
export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.ok;
}

/**
 * The environment a bench's fleet runs with: the web and the dev provider on free ports of
 * 127.0.0.1, the bench's own database, Redis and prefixes, JSON logs, then `extra` on top.
 */
export async function benchFleetEnv(opts: {
  readonly mysqlUrl: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly cachePrefix: string;
  readonly logLevel: string;
  readonly extra?: NodeJS.ProcessEnv;
}): Promise<{ env: NodeJS.ProcessEnv; webUrl: string; providerUrl: string }> {
  const webPort = await freePort();
  const providerPort = await freePort();
  const providerUrl = `http://127.0.0.1:${providerPort}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MYSQL_URL: opts.mysqlUrl,
    REDIS_URL: opts.redisUrl,
    QUEUE_PREFIX: opts.queuePrefix,
    CACHE_PREFIX: opts.cachePrefix,
    LOG_LEVEL: opts.logLevel,
    LOG_FORMAT: 'json',
    HOST: '127.0.0.1',
    PORT: String(webPort),
    NOTIFY_PROVIDER_PORT: String(providerPort),
    NOTIFY_PROVIDER_URL: providerUrl,
    ...opts.extra,
  };
  return { env, webUrl: `http://127.0.0.1:${webPort}`, providerUrl };
}
