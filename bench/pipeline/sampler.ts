/**
 * Once a second, for the whole run: where the orders are (MySQL, by status), the notifications
 * still owed, each queue's backlog, Redis used_memory, and riders over their capacity. The steps
 * read the backlog from it; the checks read the riders; the JSON keeps the series.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Db } from '../../shared/db.ts';
import { log } from '../lib/log.ts';
import { backlogOf, queueCounts } from '../lib/queue-counts.ts';
import { usedMemory } from '../lib/redis-keys.ts';
import type { SeriesTable } from '../lib/series-json.ts';

export interface Sample {
  /** Seconds since the sampler started. */
  readonly t: number;
  readonly phase: string;
  readonly accepted: number;
  readonly status: Record<string, number>;
  /** Orders accepted and not yet through: CREATED + PRICED. */
  readonly openOrders: number;
  /** Notifications owed and not yet sent (PENDING ledger rows). */
  readonly pendingNotifications: number;
  readonly dispatched: number;
  /** Jobs still to run per queue (waiting, active, delayed, prioritized). */
  readonly queues: Record<string, number>;
  readonly redisUsedMemory: number;
  /** Riders holding more orders than their capacity (0, always). */
  readonly ridersOverCapacity: number;
}

export interface SamplerDeps {
  readonly db: Db;
  readonly redis: Redis;
  readonly queues: readonly Queue[];
  readonly accepted: () => number;
}

async function count(db: Db, sql: string): Promise<number> {
  return Number(((await db.raw(sql)) as [{ n: number | string }[]])[0][0]?.n ?? 0);
}

export class Sampler {
  readonly samples: Sample[] = [];
  phase = 'idle';
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly startedAt = performance.now();
  private readonly deps: SamplerDeps;

  constructor(deps: SamplerDeps) {
    this.deps = deps;
  }

  /** Seconds since the sampler started (the samples' clock). */
  now(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  start(onSample: (s: Sample) => void): void {
    this.loop = (async () => {
      let tick = 1;
      while (!this.stopped) {
        const wait = this.startedAt + tick * 1000 - performance.now();
        if (wait > 0) await sleep(wait);
        if (this.stopped) break;
        try {
          const sample = await this.take();
          this.samples.push(sample);
          onSample(sample);
        } catch (error) {
          log(`  bench: a sample failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        // A slow sample skips the seconds it overran rather than piling up.
        tick = Math.max(tick + 1, Math.ceil(this.now()));
      }
    })();
  }

  async take(): Promise<Sample> {
    const { db, redis, queues } = this.deps;
    const [statusRows, pending, over, memory, ...counts] = await Promise.all([
      db('orders').select('status').count({ n: '*' }).groupBy('status') as Promise<{ status: string; n: number | string }[]>,
      count(db, "SELECT COUNT(*) AS n FROM notifications WHERE status = 'PENDING'"),
      count(db, 'SELECT COUNT(*) AS n FROM riders WHERE active_orders > capacity OR active_orders < 0'),
      usedMemory(redis),
      ...queues.map((q) => queueCounts(q)),
    ]);
    const status = Object.fromEntries(statusRows.map((r) => [r.status, Number(r.n)]));
    return {
      t: Math.round(this.now() * 10) / 10,
      phase: this.phase,
      accepted: this.deps.accepted(),
      status,
      openOrders: (status.CREATED ?? 0) + (status.PRICED ?? 0),
      pendingNotifications: pending,
      dispatched: status.DISPATCHED ?? 0,
      queues: Object.fromEntries(queues.map((q, i) => [q.name, backlogOf(counts[i]!)])),
      redisUsedMemory: memory,
      ridersOverCapacity: over,
    };
  }

  /** The samples taken between two moments of the sampler's clock. */
  between(fromS: number, toS: number): Sample[] {
    return this.samples.filter((s) => s.t >= fromS && s.t <= toS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  table(): SeriesTable {
    const statuses = [...new Set(this.samples.flatMap((s) => Object.keys(s.status)))].sort();
    const queues = this.deps.queues.map((q) => q.name);
    return {
      columns: ['t', 'phase', 'accepted', ...statuses.map((s) => `orders.${s}`), 'pendingNotifications', ...queues.map((q) => `queue.${q}`), 'redisUsedMemory', 'ridersOverCapacity'],
      rows: this.samples.map((s) => [
        s.t,
        s.phase,
        s.accepted,
        ...statuses.map((st) => s.status[st] ?? 0),
        s.pendingNotifications,
        ...queues.map((q) => s.queues[q] ?? 0),
        s.redisUsedMemory,
        s.ridersOverCapacity,
      ]),
    };
  }
}
