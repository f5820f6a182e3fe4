/** The recovery bench's processes: each from its Procfile line, watched for an exit, its warnings and notable lines counted. */
import { startBenchProcess, stopBenchProcess, type BenchProcess, type StopOutcome } from '../lib/bench-process.ts';
import { execLine } from '../lib/fleet/fleet.ts';
import { fleetCommands } from '../lib/fleet/procfile.ts';
import { freePort } from '../lib/process/free-port.ts';
import { countWarning } from '../lib/fleet/warnings.ts';
import { fmt, log } from '../lib/log.ts';
import { START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './settings.ts';

// Processes of the fleet, each from its Procfile line (bench/lib/bench-process.ts: own process group, stopped whatever happens)

export interface FleetProcess extends BenchProcess {
  warnings: number;
  readonly warningKinds: Map<string, number>;
  /** Log lines of interest (maintenance summaries, watchdog replacements): when (epoch ms) and what. */
  readonly notable: { readonly at: number; readonly msg: string }[];
}

export const running = new Map<string, FleetProcess>();
export const exits = new Map<string, StopOutcome>();
/** The notable lines of the processes stopped so far. */
export const exitedNotes: Record<string, { at: number; msg: string }[]> = {};
/** failure: set when a process dies on its own (the bench stops). */
export const fleetState = { failure: null as string | null };

export const NOTABLE = /compensation:|reconcile:|worker stuck|maintenance job failed/;
/** No metrics servers: nothing to collide with anyone's fleet on the Procfile's default ports. */
export const NO_METRICS = { WORKER_METRICS_PORT: '0', NOTIFIER_METRICS_PORT: '0', SCHEDULER_METRICS_PORT: '0', METRICS_PORT: '0' };

export async function startProcess(name: string, env: NodeJS.ProcessEnv, readyLine: RegExp, probe: () => Promise<boolean>): Promise<FleetProcess> {
  const command = fleetCommands().get(name);
  if (!command) throw new Error(`no Procfile line "${name}"`);
  const extra = { warnings: 0, warningKinds: new Map<string, number>(), notable: [] as { at: number; msg: string }[] };
  const base = await startBenchProcess({
    name,
    command: 'sh',
    args: ['-c', execLine(command)],
    env: { ...env, ...NO_METRICS },
    readyLine,
    probe,
    timeoutMs: START_TIMEOUT_MS,
    onLine: (stream, line) => {
      countWarning(extra, stream, line);
      if (NOTABLE.test(line) && extra.notable.length < 200) {
        try {
          const entry = JSON.parse(line) as { msg?: unknown; time?: unknown; queue?: unknown };
          const at = typeof entry.time === 'number' ? entry.time : typeof entry.time === 'string' ? Date.parse(entry.time) : Date.now();
          extra.notable.push({ at, msg: `${String(entry.msg)}${typeof entry.queue === 'string' ? ` (queue ${entry.queue})` : ''}` });
        } catch {
          extra.notable.push({ at: Date.now(), msg: line.slice(0, 300) });
        }
      }
    },
  });
  const proc: FleetProcess = Object.assign(base, extra);
  running.set(name, proc);
  exits.delete(name);
  void proc.exited.then(({ code, signal }) => {
    if (proc.stopping) return;
    fleetState.failure = `${name} (pid ${proc.pid}) exited on its own: code ${code}, signal ${signal}`;
    log(`bench: ${fleetState.failure}\n${proc.lines.lastLines.slice(-20).join('\n')}`);
  });
  return proc;
}

export async function stopProcesses(names: readonly string[]): Promise<void> {
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

export function warningsOf(proc: FleetProcess | undefined) {
  return proc ? { warnings: proc.warnings, kinds: Object.fromEntries(proc.warningKinds), notable: proc.notable } : null;
}

export function dumpOutput(): void {
  for (const proc of running.values()) {
    if (proc.lines.lastLines.length) log(`  [${proc.name}] last output:\n${proc.lines.lastLines.slice(-10).map((l) => `    ${l.slice(0, 300)}`).join('\n')}`);
  }
}

/** The fleet's environment: the web and the dev provider on free ports of 127.0.0.1, the bench's database, Redis and prefixes, then extra. */
export async function benchFleetEnv(opts: { mysqlUrl: string; redisUrl: string; queuePrefix: string; cachePrefix: string; logLevel: string; extra: NodeJS.ProcessEnv }) {
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
