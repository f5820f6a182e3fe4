import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { closedPort } from './tcp-proxy.ts';

/**
 * A Redis server of the test's own on a free port (as ours runs: no persistence), which the test
 * may crash and restart without touching the Redis every other test file shares.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  readonly port: number;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await closedPort());
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) and resolves once it answers PING. */
  async restart(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    this.child = child;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    probe.on('error', () => undefined); // refused while the server boots: the loop below retries
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          if (probe.status === 'wait') await probe.connect();
          if ((await probe.ping()) === 'PONG') return;
        } catch (error) {
          if (attempt > 200 || child.exitCode !== null) throw error;
          await new Promise((r) => setTimeout(r, 25)); // retry pacing while the server boots
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  /** Kills the server outright (SIGKILL): everything in it is gone, as with our no-persistence Redis. */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return; // gone already (crashed before)
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.crash();
  }
}
