/**
 * The fleet a bench runs: the Procfile's processes (web, worker, notifier, scheduler) and the dev
 * provider, each started from its Procfile command (`sh -c 'exec <command>'`: the shell expands the
 * line's variables, then becomes the process, so its pid is node's), on ports of its own on
 * 127.0.0.1 (the web, the provider, each metrics server: nothing collides with anyone else's fleet).
 * A process is ready when a probe from outside says so (the web's /readyz, the provider's /control,
 * a metrics server's /healthz), whatever its log level. A line may run as several processes (copies:
 * `worker`, `worker.2`, ...), each with its own metrics port. The fleet watches for a process that
 * exits on its own, counts each one's warnings, kills one on purpose when asked (chaos), and stops
 * them in the order given.
 */
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { httpOk, startBenchProcess, stopBenchProcess, type BenchProcess, type StopOutcome, type Stream } from '../bench-process.ts';
import { withChildren, type CpuGroups } from '../cpu.ts';
import { fmt, log } from '../log.ts';
import { freePort } from '../process/free-port.ts';
import { DEV_PROVIDER, fleetCommands, metricsPortVariable } from './procfile.ts';
import { countWarning, type WarningCounts } from './warnings.ts';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

/**
 * The line with exec after its leading NAME=value assignments: the shell then becomes the process.
 * `node` in it is the Node running the bench (scripts/node: Node 24), not an older one on PATH.
 */
export function execLine(command: string): string {
  const [, assignments = '', rest = command] = /^((?:\w+=\S+\s+)*)(.*)$/.exec(command) ?? [];
  return `PATH='${dirname(process.execPath)}':"$PATH"; export PATH; ${assignments}exec ${rest}`;
}

export interface FleetProcess extends BenchProcess, WarningCounts {}

export interface FleetOptions {
  /** MYSQL_URL, REDIS_URL, QUEUE_PREFIX, CACHE_PREFIX and Courier's settings for every process. */
  readonly env: NodeJS.ProcessEnv;
  readonly logLevel: string;
  /** Sees every line of every process (e.g. to note the maintenance jobs' summaries). */
  readonly onLine?: (proc: FleetProcess, stream: Stream, line: string) => void;
  /** Echo a process's first lines after it is ready too (default true); false for a run whose faults make them warn. */
  readonly echoAfterReady?: boolean;
  /** Processes per Procfile line where more than one (e.g. { worker: 2 }: `worker` and `worker.2`). */
  readonly copies?: Readonly<Record<string, number>>;
}

/** The Procfile line a process runs: `worker.2` is a copy of `worker`. */
export const lineOf = (name: string): string => name.replace(/\.\d+$/, '');

export class Fleet {
  readonly webUrl: string;
  readonly providerUrl: string;
  /** Set when a process exits on its own: the bench stops. */
  failure: string | null = null;
  readonly procs = new Map<string, FleetProcess>();
  readonly exits = new Map<string, StopOutcome>();
  private readonly commands = fleetCommands();
  private readonly env: NodeJS.ProcessEnv;
  private readonly probes = new Map<string, () => Promise<boolean>>();
  /** Per process: its own metrics port variable (the copies of a line). */
  private readonly ownEnv = new Map<string, NodeJS.ProcessEnv>();
  private readonly opts: FleetOptions;

  private constructor(opts: FleetOptions, env: NodeJS.ProcessEnv, webUrl: string, providerUrl: string) {
    this.opts = opts;
    this.env = env;
    this.webUrl = webUrl;
    this.providerUrl = providerUrl;
  }

  /** Chooses the ports; nothing starts yet. */
  static async create(opts: FleetOptions): Promise<Fleet> {
    const webPort = await freePort();
    const providerPort = await freePort();
    const providerUrl = `http://127.0.0.1:${providerPort}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...opts.env,
      LOG_LEVEL: opts.logLevel,
      LOG_FORMAT: 'json',
      HOST: '127.0.0.1',
      PORT: String(webPort),
      NOTIFY_PROVIDER_PORT: String(providerPort),
      NOTIFY_PROVIDER_URL: providerUrl,
      WARMUP_ON_START: opts.env.WARMUP_ON_START ?? 'false',
    };
    const fleet = new Fleet(opts, env, `http://127.0.0.1:${webPort}`, providerUrl);
    fleet.probes.set('web', () => httpOk(`${fleet.webUrl}/readyz`));
    fleet.probes.set(DEV_PROVIDER, () => httpOk(`${providerUrl}/control`));
    for (const name of fleet.names) {
      const variable = metricsPortVariable(fleet.commands.get(lineOf(name)) ?? '');
      if (!variable) continue;
      const port = await freePort();
      fleet.ownEnv.set(name, { [variable]: String(port) });
      fleet.probes.set(name, () => httpOk(`http://127.0.0.1:${port}/healthz`));
    }
    return fleet;
  }

  /** The Procfile's names (and their copies) and the provider, in the order a fleet starts. */
  get names(): string[] {
    const lines = [...this.commands.keys()].filter((n) => n !== DEV_PROVIDER);
    const copies = (line: string) => Array.from({ length: Math.max(1, this.opts.copies?.[line] ?? 1) }, (_, i) => (i === 0 ? line : `${line}.${i + 1}`));
    return [DEV_PROVIDER, ...lines.flatMap(copies)];
  }

  /** The settings every process runs with (for loadConfig: what the fleet will use). */
  get processEnv(): NodeJS.ProcessEnv {
    return this.env;
  }

  /** Starts the processes together; resolves once all are ready. extraEnv: per process, on top. */
  async start(names: readonly string[], extraEnv: Record<string, NodeJS.ProcessEnv> = {}): Promise<void> {
    const t0 = performance.now();
    const started = await Promise.allSettled(names.map((name) => this.startOne(name, extraEnv[name] ?? {})));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    log(`  fleet ready in ${fmt((performance.now() - t0) / 1000, 1)} s: ${names.join(', ')}; web ${this.webUrl}, dev provider ${this.providerUrl}`);
  }

  private async startOne(name: string, extraEnv: NodeJS.ProcessEnv): Promise<void> {
    const command = this.commands.get(lineOf(name));
    if (!command) throw new Error(`no Procfile line "${lineOf(name)}" (and it is not the dev provider)`);
    const counts: WarningCounts = { warnings: 0, warningKinds: new Map() };
    let proc: FleetProcess | undefined;
    const base = await startBenchProcess({
      name,
      command: 'sh',
      args: ['-c', execLine(command)],
      env: { ...this.env, NODE_ID: String(10 + this.names.indexOf(name)), ...this.ownEnv.get(name), ...extraEnv },
      readyLine: / ready|listening/,
      probe: this.probes.get(name) ?? (async () => false),
      timeoutMs: START_TIMEOUT_MS,
      ...(this.opts.echoAfterReady === undefined ? {} : { echoAfterReady: this.opts.echoAfterReady }),
      onLine: (stream, line) => {
        countWarning(counts, stream, line);
        if (proc) this.opts.onLine?.(proc, stream, line);
      },
    });
    proc = Object.assign(base, counts);
    this.procs.set(name, proc);
    this.exits.delete(name);
    log(`  [${name}] ready: pid ${proc.pid}, ${fmt((performance.now() - proc.startMs) / 1000, 1)} s (${command})`);
    void proc.exited.then(({ code, signal }) => {
      if (proc.stopping) return;
      this.failure = `${name} (pid ${proc.pid}) exited on its own: code ${code}, signal ${signal}`;
      log(`bench: ${this.failure}\n${proc.lines.lastLines.slice(-20).join('\n')}`);
    });
  }

  /** Throws when a process died on its own. */
  check(): void {
    if (this.failure) throw new Error(this.failure);
  }

  /**
   * Kills a process outright (SIGKILL to its group, as a crash or the OOM killer would) and resolves
   * once it is gone; start([name]) starts it again. Not a failure of the fleet: it was asked for.
   */
  async kill(name: string): Promise<void> {
    const proc = this.procs.get(name);
    if (!proc || !proc.lines.running) return;
    proc.stopping = true;
    proc.lines.signal('SIGKILL');
    this.exits.set(name, { ...(await proc.exited), forced: true, seconds: 0 });
  }

  /** Stops the processes in the order given (by default: the web first, the workers, the provider last). */
  async stop(names: readonly string[] = ['web', 'scheduler', 'worker', 'notifier', DEV_PROVIDER].flatMap((line) => this.names.filter((n) => lineOf(n) === line))): Promise<void> {
    for (const name of names) {
      const proc = this.procs.get(name);
      if (!proc || this.exits.has(name)) continue;
      const exit = await stopBenchProcess(proc, STOP_TIMEOUT_MS);
      this.exits.set(name, exit);
      log(
        `  [${name}] pid ${proc.pid} exited: code ${exit.code}, signal ${exit.signal}, ${fmt(exit.seconds * 1000)} ms after SIGTERM` +
          `${exit.forced ? ' (killed after the bound)' : ''}; ${fmt(proc.warnings)} warning/error log lines`,
      );
      for (const [kind, n] of [...proc.warningKinds].sort((a, b) => b[1] - a[1]).slice(0, 5)) log(`      ${fmt(n)} x "${kind}"`);
    }
  }

  /** The fleet's processes as CPU groups (bench/lib/cpu.ts). */
  cpuGroups(): CpuGroups {
    const groups: CpuGroups = {};
    for (const [name, proc] of this.procs) groups[name] = withChildren(proc.pid);
    return groups;
  }

  /** What each process warned about, for the results. */
  warnings(): Record<string, { warnings: number; kinds: Record<string, number>; exit: StopOutcome | null }> {
    return Object.fromEntries(
      [...this.procs].map(([name, p]) => [name, { warnings: p.warnings, kinds: Object.fromEntries(p.warningKinds), exit: this.exits.get(name) ?? null }]),
    );
  }

  /** The dev provider's counters (GET /control): requests, deliveries, duplicates, failures. */
  async providerStats(): Promise<Record<string, number> | null> {
    try {
      const response = await fetch(`${this.providerUrl}/control`, { signal: AbortSignal.timeout(5000) });
      return ((await response.json()) as { stats: Record<string, number> }).stats;
    } catch {
      return null;
    }
  }

  /** The last lines of every process still running (when something went wrong). */
  dumpOutput(): void {
    for (const proc of this.procs.values()) {
      if (!this.exits.has(proc.name) && proc.lines.lastLines.length) {
        log(`  [${proc.name}] last output:\n${proc.lines.lastLines.slice(-10).map((l) => `    ${l.slice(0, 300)}`).join('\n')}`);
      }
    }
  }
}
