/**
 * A MariaDB server of our own: a fresh data directory under the system's temporary folder
 * (mariadb-install-db; create(), then start()), a mariadbd on a free port of 127.0.0.1 with its own socket, where root logs
 * in over TCP with the empty password Courier's default URL uses. A bench may crash it (SIGKILL, as
 * a power cut would) and start it again on the same port and data directory, and the machine's own
 * MariaDB is never touched. stop() kills it and removes the data directory.
 *
 * As with private-redis.ts, the server runs under a small shell watcher in a process group of its
 * own: crash() and stop() kill the group, and the watcher kills the server and removes the data
 * directory within a second if this process dies without either (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { childPids } from '../proc-stats.ts';
import { freePort } from './free-port.ts';
import { commOf, killGroupOf, killServerGroup } from './server-group.ts';

const INSTALL_BOUND_MS = 60_000;
const START_BOUND_MS = 30_000;
const GONE_BOUND_MS = 10_000;
/** A small server: the benches that use it run a few thousand orders. */
const SERVER_OPTIONS = ['--innodb-log-file-size=8M', '--innodb-buffer-pool-size=64M', '--skip-name-resolve', '--skip-log-bin', '--max-connections=500'];

export class PrivateMariaDb {
  readonly port: number;
  /** The folder holding the data directory, the socket, the pid file and the error log. */
  readonly dir: string;
  private group: ChildProcess | undefined;
  private install: ChildProcess | undefined;
  private readonly killOnExit = () => this.killGroup();

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /**
   * Its folder and port, nothing started yet: register stop() as a clean-up before start(), so that
   * an interruption during the start removes what was made.
   */
  static async create(): Promise<PrivateMariaDb> {
    return new PrivateMariaDb(await freePort(), mkdtempSync(join(tmpdir(), 'courier-mariadb-')));
  }

  /** Fills a fresh data directory (mariadb-install-db), starts the server and resolves once root can run a query over TCP. */
  async start(): Promise<void> {
    const args = ['--no-defaults', `--datadir=${this.dataDir}`, '--auth-root-authentication-method=normal', '--user=root', '--skip-test-db', ...SERVER_OPTIONS];
    // A group of its own: the script runs a mariadbd --bootstrap, which stop() must kill with it.
    const install = spawn('mariadb-install-db', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: INSTALL_BOUND_MS, killSignal: 'SIGKILL', detached: true });
    this.install = install;
    let output = '';
    install.stdout.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-2000)));
    install.stderr.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-2000)));
    const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      install.once('error', (error) => resolve({ code: null, error }));
      install.once('close', (code) => resolve({ code }));
    });
    this.install = undefined;
    if (exit.code !== 0) throw new Error(`mariadb-install-db failed (${exit.error?.message ?? `exit ${exit.code}`}): ${output}`);
    await this.restart();
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** root with the empty password, over TCP, as Courier's default MYSQL_URL. */
  url(database: string): string {
    return `mysql://root@127.0.0.1:${this.port}/${database}`;
  }

  /** The mariadbd's own pid (for its CPU time), when /proc tells. */
  serverPid(): number | null {
    const group = this.group?.pid;
    return group === undefined ? null : (childPids(group).find((pid) => commOf(pid) === 'mariadbd') ?? null);
  }

  /** Starts the server (again: the same port and data directory) and resolves once root can run a query. */
  async restart(): Promise<void> {
    const parent = process.pid;
    const args = [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(this.dir, 'sock')}`,
      `--pid-file=${join(this.dir, 'mariadbd.pid')}`,
      `--log-error=${join(this.dir, 'error.log')}`,
      '--user=root',
      ...SERVER_OPTIONS,
    ].map(shellQuote);
    // The watcher: while this process and the server live, wait; if this process is gone, kill the
    // server and remove the folder (a crash() kills the watcher first, so the data stays).
    const script =
      `mariadbd ${args.join(' ')} & r=$!; ` +
      `while kill -0 ${parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; ` +
      `if ! kill -0 ${parent} 2>/dev/null; then kill -9 $r 2>/dev/null; sleep 1; rm -rf ${shellQuote(this.dir)}; fi`;
    const group = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
    this.group = group;
    process.once('exit', this.killOnExit);
    const deadline = Date.now() + START_BOUND_MS;
    for (;;) {
      try {
        const connection = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', password: '', connectTimeout: 1000 });
        await connection.query('SELECT 1');
        await connection.end();
        return;
      } catch (error) {
        if (Date.now() > deadline || group.exitCode !== null) {
          this.killGroup();
          throw new Error(`private mariadbd on port ${this.port} did not answer within ${START_BOUND_MS / 1000} s: ${String(error)}\n${this.errorLogTail()}`);
        }
        await sleep(100); // retry pacing while the server starts
      }
    }
  }

  /** Kills the server outright (SIGKILL); the data directory stays. Resolves once the server is gone. */
  async crash(): Promise<void> {
    const group = this.group;
    if (!group) return;
    process.off('exit', this.killOnExit);
    await killServerGroup(group, this.serverPid(), 'mariadbd', GONE_BOUND_MS);
    this.group = undefined;
  }

  /** Kills the server (and an install still running) and removes its folder. */
  async stop(): Promise<void> {
    const install = this.install;
    if (install) {
      const closed = new Promise<void>((resolve) => install.once('close', () => resolve()));
      killGroupOf(install);
      await Promise.race([closed, sleep(GONE_BOUND_MS)]); // it writes no more into the folder
    }
    await this.crash();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines of the server's error log (when it would not start). */
  errorLogTail(): string {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no error log)';
    }
  }

  private killGroup(): void {
    if (this.group) killGroupOf(this.group);
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
