/** Small helpers of the recovery bench: time, a summary's line, MySQL's clock, status counts, a bounded fan-out, the producer and its queues, and which batch jobs are live. */
import { performance } from 'node:perf_hooks';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JobProducer } from '../../jobs/producer.ts';
import type { Db } from '../../shared/db.ts';
import { QUEUE_NAMES, type QueueName } from '../../shared/queues/queue-names.ts';
import { fmt } from '../lib/log.ts';
import type { Summary } from '../lib/stats.ts';

export const seconds = (fromPerf: number, toPerf = performance.now()) => (toPerf - fromPerf) / 1000;

export const fmtSummary = (s: Summary, unit = 'ms') =>
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

/** PENDING notification ledger rows, all of them. */
export async function pendingNotifications(db: Db): Promise<number> {
  const rows = (await db('notifications').count({ n: '*' }).where('status', 'PENDING')) as { n: number | string }[];
  return Number(rows[0]?.n ?? 0);
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

export type BenchQueues = Record<QueueName, Queue>;

/**
 * The bench's producer on Courier's queues under one prefix (the one producer the fleet uses:
 * maintenance jobs added through it, batch jobs looked up through it) and its queue handles
 * (counts, states; the fleet runs the jobs). Closing the producer closes the queues.
 */
export function benchProducer(redis: Redis, prefix: string): { producer: JobProducer; queues: BenchQueues } {
  const producer = new JobProducer(redis, { prefix, timeoutMs: 5000 });
  const queues = Object.fromEntries(Object.values(QUEUE_NAMES).map((name) => [name, producer.queue(name)])) as BenchQueues;
  return { producer, queues };
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

/** Job lookups per round trip. */
const LOOKUP_PAGE = 1000;

/**
 * Of the batch job ids that rows name (orders.price_job_id, notifications.job_id; null: none), the
 * ones whose job is still to run: one lookup per batch, not per row (JobProducer.lookUp, pipelined
 * by the page), as the reconciler looks them up.
 */
export async function liveBatches(producer: Pick<JobProducer, 'lookUp'>, queue: QueueName, jobIds: Iterable<string | null>): Promise<Set<string>> {
  const ids = [...new Set([...jobIds].filter((id): id is string => id !== null))];
  const live = new Set<string>();
  for (let start = 0; start < ids.length; start += LOOKUP_PAGE) {
    const page = ids.slice(start, start + LOOKUP_PAGE);
    const looks = await producer.lookUp(queue, page);
    page.forEach((id, i) => {
      if (looks[i] === 'live') live.add(id);
    });
  }
  return live;
}

/** The payloads of jobs (one HGET each, pipelined by the page); null for a job that is gone. */
export async function jobPayloads(redis: Redis, queue: Queue, jobIds: readonly string[]): Promise<Map<string, unknown>> {
  const payloads = new Map<string, unknown>();
  for (let start = 0; start < jobIds.length; start += LOOKUP_PAGE) {
    const page = jobIds.slice(start, start + LOOKUP_PAGE);
    const pipeline = redis.pipeline();
    for (const id of page) pipeline.hget(queue.toKey(id), 'data');
    const results = (await pipeline.exec()) ?? [];
    page.forEach((id, i) => {
      const [error, data] = results[i] ?? [null, null];
      if (error) throw error;
      payloads.set(id, typeof data === 'string' ? (JSON.parse(data) as unknown) : null);
    });
  }
  return payloads;
}
