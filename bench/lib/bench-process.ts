/**
 * The processes a bench starts (the servers under test, the fleet): each in a process group of its
 * own, ready when it logs its ready line or a probe from outside says so, stopped with a SIGTERM
 * (SIGKILL to its group after a bound), and none left behind when the bench exits, however it
 * exits (bench/lib/run-bench.ts kills what is still registered here). Each one also stops itself if
 * the bench dies without stopping it: the preload exit-with-parent.mjs, put in its NODE_OPTIONS.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { log } from './log.ts';
import { ROOT, spawnLines, type Exit, type LineProcess, type Stream } from './process/line-process.ts';

export type { Exit, Stream };

const PRELOAD = pathToFileURL(join(ROOT, 'bench', 'lib', 'exit-with-parent.mjs')).href;
/** BENCH_CPU_PROF_DIR: when set, each process a bench starts writes a V8 CPU profile under it. */
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR;

export interface BenchProcess {
  readonly name: string;
  readonly lines: LineProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** performance.now() when it was spawned. */
  readonly startMs: number;
  /** Set when the bench stops it: an exit from then on is expected. */
  stopping: boolean;
}

export interface StartOptions {
  /** Its name in the bench's output and the folder of its CPU profile. */
  readonly name: string;
  /** What runs: a command and its arguments (e.g. sh -c '<a Procfile line>' or node <file>). */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** The line it logs when ready; never echoed. */
  readonly readyLine: RegExp;
  /** Ready also when this says so (for a process whose ready line is below its log level). */
  readonly probe?: () => Promise<boolean>;
  readonly timeoutMs: number;
  /** Sees every line of its output (stdout or stderr). */
  readonly onLine?: (stream: Stream, line: string) => void;
  /** Echo its first lines after it is ready too (default true); false: only until then (a run that expects warnings). */
  readonly echoAfterReady?: boolean;
}

const running = new Set<BenchProcess>();

/** Every process still running (run-bench.ts kills them on the way out). */
export function runningProcesses(): readonly BenchProcess[] {
  return [...running];
}

/** The environment that makes a node process stop itself when the bench dies, and profile itself when asked. */
function withBenchNodeOptions(name: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const options = [env.NODE_OPTIONS ?? '', `--import=${PRELOAD}`];
  if (CPU_PROF_DIR) {
    // Written when the process exits (its graceful SIGTERM path ends in process.exit).
    const dir = join(CPU_PROF_DIR, name);
    mkdirSync(dir, { recursive: true });
    options.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  return { ...env, NODE_OPTIONS: options.join(' ').trim(), BENCH_PARENT_PID: String(process.pid) };
}

/**
 * Starts a process and resolves once it is ready. Its first 15 lines of output (other than the
 * ready line) are echoed, so a start-up error shows; the last 200 lines are kept.
 */
export async function startBenchProcess(opts: StartOptions): Promise<BenchProcess> {
  const startMs = performance.now();
  const lines = spawnLines(opts.command, opts.args, { env: withBenchNodeOptions(opts.name, opts.env), detached: true, keepOutput: false });
  const proc: BenchProcess = { name: opts.name, lines, pid: lines.pid, exited: lines.exited, startMs, stopping: false };
  running.add(proc);
  void lines.exited.then(() => running.delete(proc));
  let shown = 0;
  let sawReadyLine = false;
  let ready = false;
  lines.onLine((stream, line) => {
    opts.onLine?.(stream, line);
    if (opts.readyLine.test(line)) {
      sawReadyLine = true;
      return;
    }
    if (ready && opts.echoAfterReady === false) return;
    if (shown < 15) log(`  [${opts.name} ${stream}] ${line.slice(0, 400)}`);
    else if (shown === 15) log(`  [${opts.name}] (more output suppressed)`);
    shown += 1;
  });
  const deadline = startMs + opts.timeoutMs;
  while (lines.running) {
    if (sawReadyLine || (opts.probe && (await opts.probe().catch(() => false)))) {
      ready = true;
      return proc;
    }
    if (performance.now() > deadline) {
      lines.signal('SIGKILL');
      throw new Error(`${opts.name} was not ready within ${opts.timeoutMs / 1000} s:\n${lines.lastLines.join('\n')}`);
    }
    await sleep(200); // readiness poll
  }
  const exit = await lines.exited;
  throw new Error(`${opts.name} exited (code ${exit.code}, signal ${exit.signal}) before it was ready:\n${lines.lastLines.join('\n')}`);
}

export interface StopOutcome extends Exit {
  readonly forced: boolean;
  readonly seconds: number;
}

/** SIGTERM to the process itself; SIGKILL to its group if it has not exited within the bound. */
export async function stopBenchProcess(proc: BenchProcess, boundMs: number): Promise<StopOutcome> {
  proc.stopping = true;
  const t0 = performance.now();
  if (!proc.lines.running) return { ...(await proc.exited), forced: false, seconds: 0 };
  proc.lines.process.kill('SIGTERM');
  const outcome = await Promise.race([proc.exited, sleep(boundMs).then(() => 'timeout' as const)]);
  proc.lines.signal('SIGKILL'); // anything left in its group (normally nothing)
  const seconds = (performance.now() - t0) / 1000;
  if (outcome !== 'timeout') return { ...outcome, forced: false, seconds };
  log(`  [${proc.name}] did not exit within ${boundMs / 1000} s of SIGTERM: killed`);
  return { ...(await proc.exited), forced: true, seconds };
}

/** Whether a GET answers 2xx within a second (throws when it cannot connect). */
export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.ok;
}
