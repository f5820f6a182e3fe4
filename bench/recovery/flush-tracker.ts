/** Part 2's tracker: from the FLUSHALL on, every 250 ms, where the orders accepted before it are, and whether the batches their rows name are live. */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobProducer } from '../../jobs/producer.ts';
import type { Db } from '../../shared/db.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { seconds, liveBatches, liveJobIds } from './helpers.ts';

export const DONE_STATUSES = ['DISPATCHED', 'PICKED_UP', 'DELIVERED', 'CANCELLED'];

/** Orders not done, from status counts. */
export const openOf = (counts: Record<string, number>) => Object.entries(counts).filter(([k]) => !DONE_STATUSES.includes(k)).reduce((a, [, n]) => a + n, 0);

export interface FlushSample {
  readonly t: number;
  /** Orders accepted before the flush and not done yet. */
  readonly open: number;
  /**
   * ...of which neither carried by a live job (a CREATED order: the price batch its row names; a
   * PRICED one: its zone's dispatch run) nor owed to compensation (in a failure state with a next attempt).
   */
  readonly uncovered: number;
  readonly owedToCompensation: number;
  /** Their notifications owed (PENDING ledger rows) and, of those, whose named batch is not live on the notifications queue. */
  readonly pendingNotifications: number;
  readonly uncoveredNotifications: number;
  /** Distinct batches those rows name: price batches, notification batches (one lookup each per sample). */
  readonly priceBatches: number;
  readonly notificationBatches: number;
}

export interface FlushTrackerDeps {
  readonly db: Db;
  readonly redis: Redis;
  /** Looks up the batches the rows name (one HMGET per batch). */
  readonly producer: Pick<JobProducer, 'lookUp'>;
  /** Dispatch runs are named by zone and window, not by rows: their live ids are listed. */
  readonly dispatchQueue: Queue;
  readonly zones: readonly string[];
  readonly mainStart: string;
  readonly flushAt: string;
  readonly flushPerf: number;
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

  private readonly deps: FlushTrackerDeps;

  constructor(deps: FlushTrackerDeps) {
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
            `  [flush +${fmt(t, 2)} s] accepted before the flush: ${fmt(sample.open)} not done, ${fmt(sample.uncovered)} neither carried by a live job nor owed to compensation` +
              ` (${fmt(sample.owedToCompensation)} owed to it; ${fmt(sample.priceBatches)} price batches named); notifications owed at the flush: ${fmt(sample.pendingNotifications)} pending,` +
              ` ${fmt(sample.uncoveredNotifications)} whose batch is not live (${fmt(sample.notificationBatches)} batches named)`,
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
    const { db, redis, producer, mainStart, flushAt } = this.deps;
    const t = +seconds(this.deps.flushPerf).toFixed(3);
    const [rows, pending, dispatchLive] = await Promise.all([
      db('orders')
        .select('id', 'status', 'zone_id', 'next_attempt_at', 'price_job_id')
        .where('created_at', '>=', db.raw('?', [mainStart]))
        .where('created_at', '<', db.raw('?', [flushAt]))
        .whereNotIn('status', DONE_STATUSES) as Promise<{ id: string; status: string; zone_id: string; next_attempt_at: Date | null; price_job_id: string | null }[]>,
      db('notifications as n')
        .join('orders as o', 'o.id', 'n.order_id')
        .select('n.job_id')
        .where('n.status', 'PENDING')
        .where('n.created_at', '<', db.raw('?', [flushAt]))
        .where('o.created_at', '>=', db.raw('?', [mainStart])) as Promise<{ job_id: string | null }[]>,
      liveJobIds(redis, this.deps.dispatchQueue),
    ]);
    const created = rows.filter((row) => row.status === 'CREATED');
    const priceIds = new Set(created.map((row) => row.price_job_id).filter((id): id is string => id !== null));
    const notifyIds = new Set(pending.map((row) => row.job_id).filter((id): id is string => id !== null));
    const [livePrice, liveNotify] = await Promise.all([liveBatches(producer, 'orders', priceIds), liveBatches(producer, 'notifications', notifyIds)]);
    const zonesWithRun = new Set(this.deps.zones.filter((zone) => [...dispatchLive].some((id) => id.startsWith(`dispatch-${zone}-`))));
    let uncovered = 0;
    let owed = 0;
    for (const row of rows) {
      if (row.status === 'CREATED') {
        if (row.price_job_id === null || !livePrice.has(row.price_job_id)) uncovered += 1;
      } else if (row.status === 'PRICED') {
        if (!zonesWithRun.has(String(row.zone_id))) uncovered += 1;
      } else if ((row.status === 'PRICING_FAILED' || row.status === 'DISPATCH_FAILED') && row.next_attempt_at !== null) {
        owed += 1;
      } else {
        uncovered += 1;
      }
    }
    const uncoveredNotifications = pending.filter((n) => n.job_id === null || !liveNotify.has(n.job_id)).length;
    return {
      t,
      open: rows.length,
      uncovered,
      owedToCompensation: owed,
      pendingNotifications: pending.length,
      uncoveredNotifications,
      priceBatches: priceIds.size,
      notificationBatches: notifyIds.size,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
