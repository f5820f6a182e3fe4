/** Small helpers of the recovery bench: time, summaries, MySQL's clock, status counts, a bounded fan-out, queue handles and live job ids. */
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../shared/db.ts';
import { QUEUE_NAMES, type QueueName } from '../../shared/queues/queue-names.ts';
import { fmt } from '../lib/log.ts';

// Small helpers

export const seconds = (fromPerf: number, toPerf = performance.now()) => (toPerf - fromPerf) / 1000;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function stats(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN,
  };
}
export type Stats = ReturnType<typeof stats>;
export const fmtStats = (s: Stats, unit = 'ms') =>
  s.n === 0 ? 'none' : `n ${fmt(s.n)}: p50 ${fmt(s.p50)} ${unit}, p95 ${fmt(s.p95)}, p99 ${fmt(s.p99)}, max ${fmt(s.max)} ${unit}`;


export async function mysqlNow(db: Db): Promise<string> {
  return ((await db.raw("SELECT DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f') AS t")) as [{ t: string }[]])[0][0]!.t;
}

export async function statusCounts(db: Db, where?: (q: ReturnType<Db>) => void): Promise<Record<string, number>> {
  const query = db('orders').select('status').count({ n: '*' }).groupBy('status');
  where?.(query);
  const rows = (await query) as { status: string; n: number | string }[];
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Runs fn over items with at most `concurrency` in flight. */
export async function eachLimited<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await fn(item);
      }
    }),
  );
}

/** The bench's handles on Courier's queues under one prefix (counts and job lookups; the fleet runs the jobs). */
export function benchQueues(redis: Redis, prefix: string) {
  const queue = (name: QueueName) => new Queue(name, { connection: redis, prefix });
  return { orders: queue(QUEUE_NAMES.orders), dispatch: queue(QUEUE_NAMES.dispatch), notifications: queue(QUEUE_NAMES.notifications), maintenance: queue(QUEUE_NAMES.maintenance) };
}

/** Job ids on a queue that are still to run: waiting, prioritized, delayed or active. */
export async function liveJobIds(redis: Redis, queue: Queue): Promise<Set<string>> {
  const [wait, active, delayed, prioritized] = await Promise.all([
    redis.lrange(queue.keys.wait!, 0, -1),
    redis.lrange(queue.keys.active!, 0, -1),
    redis.zrange(queue.keys.delayed!, '0', '-1'),
    redis.zrange(queue.keys.prioritized!, '0', '-1'),
  ]);
  return new Set([...wait, ...active, ...delayed, ...prioritized]);
}


// ---------------------------------------------------------------------------------------------
