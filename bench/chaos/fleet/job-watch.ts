/**
 * What BullMQ says about the fleet's jobs, read straight from Redis: the jobs active right now on a
 * set of queues (so a worker is killed while it holds one), and the jobs BullMQ found stalled (a
 * dead worker's job whose lock ran out, put back for another worker) from the queues' event
 * streams, read as they come so that the streams' trimming loses none.
 */
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';

export class JobWatch {
  /** Stalled jobs seen per queue. */
  readonly stalled = new Map<string, number>();
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly lastIds = new Map<string, string>();
  private polling: Promise<void> | undefined;
  private stopped = false;

  constructor(redisUrl: string, prefix: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    this.redis.on('error', () => undefined); // Redis may be down mid-run: a poll fails, the next one tries again
    this.prefix = prefix;
  }

  /** Jobs active now on the queues. */
  async active(queues: readonly string[]): Promise<number> {
    const counts = await Promise.all(queues.map((q) => this.redis.llen(`${this.prefix}:${q}:active`)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Waits (at most boundMs) until a job is active on the queues; resolves with how many are (0: none came). */
  async untilActive(queues: readonly string[], boundMs: number): Promise<number> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const n = await this.active(queues).catch(() => 0);
      if (n > 0 || Date.now() > deadline) return n;
      await sleep(5); // polling Redis, bounded
    }
  }

  /** Counts the stalled events of the queues from now on, every second, until stop(). */
  start(queues: readonly string[], since = Date.now()): void {
    for (const q of queues) this.lastIds.set(q, `${since}-0`);
    this.polling = (async () => {
      while (!this.stopped) {
        await this.poll().catch(() => undefined);
        await sleep(1000); // a poll a second keeps well ahead of the streams' trimming
      }
      await this.poll().catch(() => undefined);
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.polling;
    this.redis.disconnect();
  }

  private async poll(): Promise<void> {
    for (const queue of this.lastIds.keys()) {
      for (;;) {
        const entries = await this.redis.xrange(`${this.prefix}:${queue}:events`, `(${this.lastIds.get(queue)!}`, '+', 'COUNT', 1000);
        if (entries.length === 0) break;
        for (const [, fields] of entries) if (fields[0] === 'event' && fields[1] === 'stalled') this.stalled.set(queue, (this.stalled.get(queue) ?? 0) + 1);
        this.lastIds.set(queue, entries.at(-1)![0]);
        if (entries.length < 1000) break;
      }
    }
  }
}
