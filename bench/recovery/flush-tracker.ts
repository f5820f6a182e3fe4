/** Part 2's tracker: from the FLUSHALL on, every 250 ms, where the orders accepted before it are. */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../shared/db.ts';
import { notificationJobId, priceJobId } from '../../shared/queues/payloads.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { seconds, liveJobIds } from './helpers.ts';

// Part 2: recovery after a FLUSHALL under load


export const DONE_STATUSES = ['DISPATCHED', 'PICKED_UP', 'DELIVERED', 'CANCELLED'];

export interface FlushSample {
  readonly t: number;
  /** Orders accepted before the flush and not done yet. */
  readonly open: number;
  /** ...of which neither in a queue nor owed to compensation (in a failure state with a next attempt). */
  readonly uncovered: number;
  readonly owedToCompensation: number;
  /** Their notifications owed (PENDING ledger rows) and, of those, not on the notifications queue. */
  readonly pendingNotifications: number;
  readonly uncoveredNotifications: number;
}

/**
 * From the FLUSHALL on, every 250 ms: where the orders accepted before it are. Stops once they are
 * done and their notifications sent, or when told.
 */
export class FlushTracker {
  readonly samples: FlushSample[] = [];
  preFlushDoneS: number | null = null;
  preFlushNotifiedS: number | null = null;
  private stopped = false;
  private loop: Promise<void> | undefined;

  private readonly deps: {
      db: Db;
      redis: Redis;
      ordersQueue: Queue;
      dispatchQueue: Queue;
      notificationsQueue: Queue;
      zones: readonly string[];
      mainStart: string;
      flushAt: string;
      flushPerf: number;
    };

  constructor(
    deps: {
      db: Db;
      redis: Redis;
      ordersQueue: Queue;
      dispatchQueue: Queue;
      notificationsQueue: Queue;
      zones: readonly string[];
      mainStart: string;
      flushAt: string;
      flushPerf: number;
    }) {
    this.deps = deps;
  }

  /** From the FLUSHALL until the condition held for good: the first sample after the last one that broke it. */
  private heldAfter(broken: (s: FlushSample) => boolean): number | null {
    let last = -1;
    this.samples.forEach((sample, i) => {
      if (broken(sample)) last = i;
    });
    return this.samples[last + 1]?.t ?? null;
  }

  /** Orders accepted before the flush: back in the queues (or done, or owed to compensation) for good. */
  get ordersBackS(): number | null {
    return this.heldAfter((s) => s.uncovered > 0);
  }

  /** Their notifications owed at the flush: back on the notifications queue (or sent) for good. */
  get notificationsBackS(): number | null {
    return this.heldAfter((s) => s.uncoveredNotifications > 0);
  }

  start(): void {
    this.loop = (async () => {
      let lastForced = -Infinity;
      while (!this.stopped) {
        const tick = performance.now();
        try {
          const sample = await this.take();
          this.samples.push(sample);
          const { t } = sample;
          // Done and notified stay so: the first time is the time.
          if (this.preFlushDoneS === null && sample.open === 0) this.preFlushDoneS = t;
          if (this.preFlushNotifiedS === null && sample.open === 0 && sample.pendingNotifications === 0) this.preFlushNotifiedS = t;
          const force = t - lastForced >= 2;
          if (force) lastForced = t;
          progress(
            `  [flush +${fmt(t, 2)} s] accepted before the flush: ${fmt(sample.open)} not done, ${fmt(sample.uncovered)} neither queued nor owed to compensation` +
              ` (${fmt(sample.owedToCompensation)} owed to it); notifications owed at the flush: ${fmt(sample.pendingNotifications)} pending, ${fmt(sample.uncoveredNotifications)} not queued`,
            force,
          );
          if (this.preFlushNotifiedS !== null) break;
        } catch (error) {
          log(`  bench: a flush sample failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        const wait = 250 - (performance.now() - tick);
        if (wait > 0) await sleep(wait);
      }
    })();
  }

  async take(): Promise<FlushSample> {
    const { db, redis, mainStart, flushAt } = this.deps;
    const t = +seconds(this.deps.flushPerf).toFixed(3);
    const [rows, pending, ordersLive, dispatchLive, notificationsLive] = await Promise.all([
      db('orders')
        .select('id', 'status', 'attempts', 'zone_id', 'next_attempt_at')
        .where('created_at', '>=', db.raw('?', [mainStart]))
        .where('created_at', '<', db.raw('?', [flushAt]))
        .whereNotIn('status', DONE_STATUSES) as Promise<{ id: string; status: string; attempts: number; zone_id: string; next_attempt_at: Date | null }[]>,
      db('notifications as n')
        .join('orders as o', 'o.id', 'n.order_id')
        .select('n.order_id', 'n.kind')
        .where('n.status', 'PENDING')
        .where('n.created_at', '<', db.raw('?', [flushAt]))
        .where('o.created_at', '>=', db.raw('?', [mainStart])) as Promise<{ order_id: string; kind: string }[]>,
      liveJobIds(redis, this.deps.ordersQueue),
      liveJobIds(redis, this.deps.dispatchQueue),
      liveJobIds(redis, this.deps.notificationsQueue),
    ]);
    const zonesWithRun = new Set(this.deps.zones.filter((zone) => [...dispatchLive].some((id) => id.startsWith(`dispatch-${zone}-`))));
    let uncovered = 0;
    let owed = 0;
    for (const row of rows) {
      if (row.status === 'CREATED') {
        if (!ordersLive.has(priceJobId(String(row.id), Number(row.attempts)))) uncovered += 1;
      } else if (row.status === 'PRICED') {
        if (!zonesWithRun.has(String(row.zone_id))) uncovered += 1;
      } else if ((row.status === 'PRICING_FAILED' || row.status === 'DISPATCH_FAILED') && row.next_attempt_at !== null) {
        owed += 1;
      } else {
        uncovered += 1;
      }
    }
    const uncoveredNotifications = pending.filter(
      (n) => !notificationsLive.has(notificationJobId(String(n.order_id), n.kind as 'customer.dispatched')),
    ).length;
    return { t, open: rows.length, uncovered, owedToCompensation: owed, pendingNotifications: pending.length, uncoveredNotifications };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
