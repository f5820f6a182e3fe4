/**
 * A Redis server of the bench's own, on a free port of 127.0.0.1, as Courier runs Redis (no
 * persistence): a bench that runs FLUSHALL, or fills Redis with 100,000 jobs, does it there and
 * never in the Redis other people's tests share. It runs under a small shell watcher in a process
 * group of its own: stop() kills the group, so does this process's exit, and the watcher kills the
 * server within a second if the bench dies without either (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './child-processes.ts';
import { childPids } from '../proc-stats.ts';

export interface PrivateRedisServer {
  readonly url: string;
  readonly port: number;
  /** The redis-server's own pid (for its CPU time), when /proc tells. */
  serverPid(): number | null;
  /** Kills the server (SIGKILL to its group: nothing of it is kept) and waits until it is gone. */
  stop(): Promise<void>;
}

const START_BOUND_MS = 10_000;

export async function startPrivateRedis(): Promise<PrivateRedisServer> {
  const port = await freePort();
  const parent = process.pid;
  // The watcher exits (and takes the server with it) when the bench's process is gone.
  const script =
    `redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & r=$!; ` +
    `while kill -0 ${parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; kill -9 $r 2>/dev/null`;
  const child: ChildProcess = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killGroup);

  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  probe.on('error', () => undefined); // refused while the server boots
  const deadline = Date.now() + START_BOUND_MS;
  try {
    for (;;) {
      try {
        if (probe.status === 'wait') await probe.connect();
        if ((await probe.ping()) === 'PONG') break;
      } catch (error) {
        if (Date.now() > deadline || child.exitCode !== null) {
          killGroup();
          throw new Error(`private redis-server on port ${port} did not answer within ${START_BOUND_MS / 1000} s: ${String(error)}`);
        }
        await sleep(50);
      }
    }
  } finally {
    probe.disconnect();
  }

  return {
    url,
    port,
    serverPid: () => (child.pid === undefined ? null : (childPids(child.pid).find((pid) => commOf(pid) === 'redis-server') ?? null)),
    async stop() {
      killGroup();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      process.off('exit', killGroup);
    },
  };
}

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}
