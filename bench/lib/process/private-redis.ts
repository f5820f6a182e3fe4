/**
 * A Redis server of our own on a port of 127.0.0.1, as Courier runs Redis (no persistence): a test
 * that crashes and restarts Redis, or a bench that runs FLUSHALL or fills Redis with 100,000 jobs,
 * does it there and never in the Redis everyone else's tests share. Used by test/support/
 * private-redis.ts and by the benches.
 *
 * The server runs under a small shell watcher in a process group of its own: crash() and stop()
 * kill the group, so does this process's exit, and the watcher kills the server within a second if
 * this process dies without either (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { childPids } from '../proc-stats.ts';
import { freePort } from './free-port.ts';
import { commOf, killGroupOf, killServerGroup } from './server-group.ts';

const START_BOUND_MS = 10_000;
const GONE_BOUND_MS = 5_000;

export class PrivateRedis {
  readonly port: number;
  private group: ChildProcess | undefined;
  private serverPidSeen: number | null = null;
  private readonly killOnExit = () => this.killGroup();

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts a server on the port given, or on a free one, and resolves once it answers PING. */
  static async start(port?: number): Promise<PrivateRedis> {
    const redis = new PrivateRedis(port ?? (await freePort()));
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The redis-server's own pid (for its CPU time), when /proc tells. */
  serverPid(): number | null {
    const group = this.group?.pid;
    if (group === undefined) return null;
    this.serverPidSeen ??= childPids(group).find((pid) => commOf(pid) === 'redis-server') ?? null;
    return this.serverPidSeen;
  }

  /** Starts the server (again, on the same port) and resolves once it answers PING. */
  async restart(): Promise<void> {
    const parent = process.pid;
    // The watcher exits, taking the server with it, when this process is gone.
    const script =
      `redis-server --port ${this.port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & r=$!; ` +
      `while kill -0 ${parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; kill -9 $r 2>/dev/null`;
    const group = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
    this.group = group;
    this.serverPidSeen = null;
    process.once('exit', this.killOnExit);
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    probe.on('error', () => undefined); // refused while the server boots: the loop below retries
    const deadline = Date.now() + START_BOUND_MS;
    try {
      for (;;) {
        try {
          if (probe.status === 'wait') await probe.connect();
          if ((await probe.ping()) === 'PONG') return;
        } catch (error) {
          if (Date.now() > deadline || group.exitCode !== null) {
            this.killGroup();
            throw new Error(`private redis-server on port ${this.port} did not answer within ${START_BOUND_MS / 1000} s: ${String(error)}`);
          }
          await sleep(25); // retry pacing while the server boots
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  /** Kills the server outright (SIGKILL): everything in it is gone, as with our no-persistence Redis. Resolves once its port is free. */
  async crash(): Promise<void> {
    const group = this.group;
    if (!group) return;
    process.off('exit', this.killOnExit);
    await killServerGroup(group, this.serverPid(), 'redis-server', GONE_BOUND_MS);
    this.group = undefined;
  }

  async stop(): Promise<void> {
    await this.crash();
  }

  private killGroup(): void {
    if (this.group) killGroupOf(this.group);
  }
}
