/** Part 2's FLUSHALL: at mid-load, Redis emptied, what was lost noted, and the tracker started. */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { JobProducer } from '../../jobs/producer.ts';
import type { Db } from '../../shared/db.ts';
import { fmt, log } from '../lib/log.ts';
import { queueCounts, type QueueCounts } from '../lib/queue-counts.ts';
import { FlushTracker } from './flush-tracker.ts';
import { mysqlNow, seconds, statusCounts, type BenchQueues } from './helpers.ts';
import { fleetState } from './processes.ts';

export interface Flush {
  /** MySQL's clock just before and just after the FLUSHALL. */
  readonly before: string;
  readonly at: string;
  /** performance.now() and Date.now() right after it. */
  readonly perf: number;
  readonly wall: number;
  readonly accepted202: number;
  readonly ms: number;
  /** The orders of the load created before it, by status; their PENDING notifications. */
  readonly statusAt: Record<string, number>;
  readonly pendingAt: number;
  /** Batch jobs on the queues just before it (all of them dropped). */
  readonly lostJobs: Record<'orders' | 'notifications' | 'maintenance', QueueCounts>;
}

export interface FlushStep {
  /** Set once the FLUSHALL happened. */
  readonly flush: Flush | null;
  readonly tracker: FlushTracker | undefined;
  cancel(): void;
}

/**
 * After `afterS` seconds of the load: FLUSHALL, then the tracker from then on. A failure of the
 * step stops the bench (fleetState.failure).
 */
export function flushDuringLoad(ctx: {
  db: Db;
  redis: Redis;
  producer: Pick<JobProducer, 'lookUp'>;
  queues: BenchQueues;
  zones: readonly string[];
  mainStart: string;
  loadStart: number;
  afterS: number;
  accepted: () => number;
}): FlushStep {
  const { db, redis, queues, mainStart } = ctx;
  const step: { flush: Flush | null; tracker: FlushTracker | undefined; cancel(): void } = { flush: null, tracker: undefined, cancel: () => clearTimeout(timer) };
  const timer = setTimeout(() => {
    void (async () => {
      const lostJobs = { orders: await queueCounts(queues.orders), notifications: await queueCounts(queues.notifications), maintenance: await queueCounts(queues.maintenance) };
      const before = await mysqlNow(db);
      const t = performance.now();
      await redis.flushall();
      const ms = performance.now() - t;
      const at = await mysqlNow(db);
      const perf = performance.now();
      const wall = Date.now();
      const accepted202 = ctx.accepted();
      step.tracker = new FlushTracker({ db, redis, producer: ctx.producer, dispatchQueue: queues.dispatch, zones: ctx.zones, mainStart, flushAt: at, flushPerf: perf });
      step.tracker.start();
      const statusAt = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart).where('created_at', '<', at));
      const pendingAt = Number(
        (
          (await db('notifications as n')
            .join('orders as o', 'o.id', 'n.order_id')
            .count({ n: '*' })
            .where('n.status', 'PENDING')
            .where('o.created_at', '>=', mainStart)
            .where('o.created_at', '<', at)) as { n: number | string }[]
        )[0]?.n ?? 0,
      );
      step.flush = { before, at, perf, wall, accepted202, ms, statusAt, pendingAt, lostJobs };
      log(
        `  FLUSHALL at +${fmt(seconds(ctx.loadStart), 1)} s of the load (${fmt(ms, 1)} ms; MySQL time ${at}): ${fmt(accepted202)} orders answered 202 before it; ` +
          `of the orders created before it: ${Object.entries(statusAt).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}; ${fmt(pendingAt)} notifications PENDING; ` +
          `batch jobs dropped (waiting/delayed/active just before): orders ${fmt(lostJobs.orders.wait)}/${fmt(lostJobs.orders.delayed)}/${fmt(lostJobs.orders.active)}, ` +
          `notifications ${fmt(lostJobs.notifications.wait)}/${fmt(lostJobs.notifications.delayed)}/${fmt(lostJobs.notifications.active)}, ` +
          `maintenance ${fmt(lostJobs.maintenance.wait)}/${fmt(lostJobs.maintenance.delayed)}/${fmt(lostJobs.maintenance.active)}`,
      );
    })().catch((error: unknown) => {
      fleetState.failure = `the FLUSHALL step failed: ${error instanceof Error ? error.message : String(error)}`;
    });
  }, ctx.afterS * 1000);
  return step;
}
