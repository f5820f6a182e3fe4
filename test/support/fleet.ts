import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runScript, type Child } from './child-process.ts';
import { closedPort } from './tcp-proxy.ts';

/** The Procfile's processes, and the dev provider `npm start` runs beside them. */
export type Role = 'provider' | 'web' | 'worker' | 'notifier' | 'scheduler';

const ENTRYPOINTS: Record<Role, { readonly file: string; readonly ready: RegExp }> = {
  provider: { file: 'workers/dev-provider.ts', ready: /dev provider ready/ },
  web: { file: 'workers/web.ts', ready: /web listening/ },
  worker: { file: 'workers/orders.ts', ready: /worker ready/ },
  notifier: { file: 'workers/notifier.ts', ready: /notifier ready/ },
  scheduler: { file: 'workers/scheduler.ts', ready: /scheduler ready/ },
};

const READY_BOUND_MS = 30_000;
const STOP_BOUND_MS = 10_000;

export interface FleetOptions {
  readonly mysqlUrl: string;
  readonly redisUrl: string;
  /** Settings for every process, over the fleet's test defaults. */
  readonly env?: Record<string, string>;
  /** Settings of one process over those: another MYSQL_URL or REDIS_URL (a proxy in front), its own timeouts. */
  readonly per?: Partial<Record<Role, Record<string, string>>>;
  /** The processes to start, at once (default: all). */
  readonly roles?: readonly Role[];
}

/**
 * A Courier fleet of real processes (`node workers/<x>.ts`, as the Procfile runs them) on a
 * database and a Redis the test chose, with a queue and cache prefix of its own, and a dev provider
 * the notifier and the worker talk to. Maintenance ticks every second and short reconcile bounds, so
 * whatever a fault loses is put back within seconds. Every process it started is stopped by stop().
 */
export class Fleet {
  readonly queuePrefix: string;
  readonly cachePrefix: string;
  /** Every process started, in order, restarted ones included (for stop() and a failing test's logs). */
  readonly started: { readonly role: Role; readonly child: Child }[] = [];
  private readonly current = new Map<Role, Child>();
  private readonly opts: FleetOptions;
  private providerUrl: string | undefined;
  private apiUrl: string | undefined;

  private constructor(opts: FleetOptions) {
    this.opts = opts;
    const tag = randomBytes(4).toString('hex');
    this.queuePrefix = `{fleet-${tag}}`;
    this.cachePrefix = `fleet-${tag}`;
  }

  static async start(opts: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(opts);
    const roles = opts.roles ?? ['provider', 'web', 'worker', 'notifier', 'scheduler'];
    // The provider's port is chosen first, so the notifier can be told it and all start at once.
    if (roles.includes('provider')) fleet.providerUrl = `http://127.0.0.1:${await closedPort()}`;
    try {
      await Promise.all(roles.map((role) => fleet.startRole(role)));
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  /** The web's base URL (http://127.0.0.1:<port>). */
  get api(): string {
    if (!this.apiUrl) throw new Error('the fleet has no web process');
    return this.apiUrl;
  }

  /** The dev provider's base URL. */
  get provider(): string {
    if (!this.providerUrl) throw new Error('the fleet has no dev provider');
    return this.providerUrl;
  }

  /** The running process of a role (the last one started). */
  process(role: Role): Child {
    const child = this.current.get(role);
    if (!child) throw new Error(`no ${role} process`);
    return child;
  }

  /** The environment a role's process starts with. */
  envOf(role: Role, extra: Record<string, string> = {}): Record<string, string> {
    return {
      MYSQL_URL: this.opts.mysqlUrl,
      REDIS_URL: this.opts.redisUrl,
      QUEUE_PREFIX: this.queuePrefix,
      CACHE_PREFIX: this.cachePrefix,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      HOST: '127.0.0.1',
      PORT: '0',
      WARMUP_ON_START: 'false',
      WARMUP_CRON: '',
      COMPENSATE_CRON: '* * * * * *',
      RECONCILE_CRON: '* * * * * *',
      RECONCILE_CREATED_AFTER_MS: '2000',
      RECONCILE_STUCK_AFTER_MS: '3000',
      RECONCILE_NOTIFY_AFTER_MS: '3000',
      RETRY_BASE_MS: '500',
      RETRY_MAX_MS: '2000',
      DISPATCH_WINDOW_MS: '100',
      REDIS_TIMEOUT_MS: '500',
      WORKER_WATCHDOG_MS: '3000',
      ...(this.providerUrl ? { NOTIFY_PROVIDER_URL: this.providerUrl, NOTIFY_PROVIDER_PORT: new URL(this.providerUrl).port } : {}),
      ...this.opts.env,
      ...this.opts.per?.[role],
      ...extra,
    };
  }

  /** Starts (or starts again) one process of a role and resolves once it says it is ready. */
  async startRole(role: Role, extra: Record<string, string> = {}): Promise<Child> {
    const { file, ready } = ENTRYPOINTS[role];
    const child = runScript(file, [], this.envOf(role, extra));
    this.started.push({ role, child });
    this.current.set(role, child);
    const line = await child.waitForLine(ready, READY_BOUND_MS);
    if (role === 'web') this.apiUrl = /API (http:\/\/127\.0\.0\.1:\d+)\/v1\/orders/.exec(line)![1]!;
    return child;
  }

  /** Every process started and not killed is still running (none exited, none was restarted). */
  stillRunning(): Role[] {
    return this.started.filter(({ child }) => child.process.exitCode === null && child.process.signalCode === null).map(({ role }) => role);
  }

  /** Each process's output, headed by its role (for a failing test). */
  logs(): string {
    return this.started.map(({ role, child }) => `----- ${role} (pid ${child.process.pid})\n${child.output()}`).join('\n');
  }

  /**
   * SIGTERM to every process, a bounded wait for their drain, then SIGKILL to any left. With
   * FLEET_LOGS=<folder> set, each process's output is kept there (<prefix>-<role>-<pid>.log).
   */
  async stop(): Promise<void> {
    const alive = this.started.map(({ child }) => child).filter((child) => child.process.exitCode === null && child.process.signalCode === null);
    for (const child of alive) child.process.kill('SIGTERM');
    await Promise.all(alive.map((child) => Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, STOP_BOUND_MS).unref())])));
    for (const child of alive) child.kill();
    await Promise.all(alive.map((child) => child.exited));
    const folder = process.env.FLEET_LOGS;
    if (folder) {
      mkdirSync(folder, { recursive: true });
      for (const { role, child } of this.started) writeFileSync(join(folder, `${this.cachePrefix}-${role}-${child.process.pid}.log`), child.output());
    }
  }
}
