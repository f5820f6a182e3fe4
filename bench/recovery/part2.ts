/**
 * Part 2: recovery after a FLUSHALL under load, on a private Redis: the fleet from the Procfile,
 * a calibration of its capacity, then a load at half of it with FLUSHALL at mid-run, tracked until
 * every order accepted before it is carried again by the live batch its rows name, and done
 * (flush-tracker.ts); no notification twice.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobProducer } from '../../jobs/producer.ts';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { loadConfig } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders } from '../lib/bench-zones.ts';
import { backlogOf, queueCounts, type QueueCounts } from '../lib/queue-counts.ts';
import { httpOk } from '../lib/bench-process.ts';
import { RiderSimulator } from '../lib/rider-simulator.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { newLoadCounters, runOrderLoad } from '../lib/order-load.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { summarize } from '../lib/stats.ts';
import { FlushTracker, openOf } from './flush-tracker.ts';
import { fmtSummary, seconds, mysqlNow, pendingNotifications, statusCounts, benchProducer, type BenchQueues } from './helpers.ts';
import { running, exits, exitedNotes, fleetState, startProcess, stopProcesses, benchFleetEnv } from './processes.ts';
import {
  FLUSH_ORDERS,
  FLUSH_RATE_SETTING,
  CALIBRATE_ORDERS,
  CALIBRATE_RATE,
  LOG_LEVEL,
  MYSQL_URL_2,
  PREFIX_2,
  CACHE_PREFIX_2,
  ZONES,
  RIDERS_PER_ZONE,
  RIDER_CAPACITY,
  RIDER_RESET_MS,
  CALIBRATE_BOUND_S,
  PART2_DRAIN_BOUND_S,
} from './settings.ts';


// -- the calibration: the fleet's capacity end to end, measured, and the load's rate from it

export interface Calibration {
  /** The load's rate: --flush-rate, or half the capacity. */
  readonly rate: number;
  readonly figures: {
    readonly orders: number;
    readonly drainSeconds: number;
    readonly accepted: number;
    readonly acceptedPerSec: number;
    readonly dispatched: number;
    readonly seconds95: number;
    readonly secondsAll: number;
    readonly capacityPerSec: number;
  };
}

/**
 * CALIBRATE_RATE orders/s for CALIBRATE_ORDERS orders, then until all are dispatched and notified
 * (the load starts on an idle fleet: a notifier still sending the calibration's notifications
 * would delay the load's own). The capacity is the rate at which the burst went through.
 */
export async function calibrate(ctx: { db: Db; notificationsQueue: Queue; webUrl: string; apiKey: string; bodies: readonly string[] }): Promise<Calibration> {
  const { db } = ctx;
  const calSeconds = Math.max(1, Math.ceil(CALIBRATE_ORDERS / CALIBRATE_RATE));
  log(`\n  calibration: ${fmt(CALIBRATE_RATE * calSeconds)} orders at ${fmt(CALIBRATE_RATE)}/s, then until all are dispatched and notified (at most ${CALIBRATE_BOUND_S} s)`);
  const calStart = await mysqlNow(db);
  const calLoad = await runOrderLoad({
    url: ctx.webUrl,
    apiKey: ctx.apiKey,
    keyPrefix: `cal-${Date.now().toString(36)}`,
    bodies: ctx.bodies,
    connections: Math.min(100, CALIBRATE_RATE),
    seconds: calSeconds,
    rate: { overall: CALIBRATE_RATE, stagger: true },
    counters: newLoadCounters(),
    progressLabel: 'calibration load',
  });
  const calT = performance.now();
  let calOpen = Infinity;
  let calPending = Infinity;
  while (seconds(calT) < CALIBRATE_BOUND_S) {
    if (fleetState.failure) throw new Error(fleetState.failure);
    calOpen = openOf(await statusCounts(db));
    calPending = await pendingNotifications(db);
    const notificationsLeft = backlogOf(await queueCounts(ctx.notificationsQueue));
    progress(
      `  [calibration drain ${fmt(seconds(calT), 1)} s] ${fmt(calOpen)} orders not dispatched yet, ${fmt(calPending)} notifications PENDING, ${fmt(notificationsLeft)} batches on the queue`,
      false,
    );
    if (calOpen === 0 && calPending === 0 && notificationsLeft === 0) break;
    await sleep(250);
  }
  const calDrainS = seconds(calT);
  // The rate at which the burst went through: the first 95% of the orders dispatched over the
  // time from the first one created (a straggler retried after a backoff does not set the rate).
  const calDispatchUs = (
    (await db.raw(
      `SELECT TIMESTAMPDIFF(MICROSECOND, (SELECT MIN(created_at) FROM orders WHERE created_at >= ?), e.created_at) AS us
         FROM orders o JOIN order_events e ON e.order_id = o.id AND e.to_status = 'DISPATCHED'
        WHERE o.created_at >= ? ORDER BY e.created_at`,
      [calStart, calStart],
    )) as [{ us: number | string }[]]
  )[0].map((r) => Number(r.us));
  const cal95 = Math.max(1, Math.ceil(0.95 * calDispatchUs.length));
  const calSpan = { n: calDispatchUs.length, us: calDispatchUs[cal95 - 1] ?? NaN, n95: cal95, usAll: calDispatchUs.at(-1) ?? NaN };
  const capacity = calSpan.n95 / (calSpan.us / 1e6);
  const rate = FLUSH_RATE_SETTING > 0 ? FLUSH_RATE_SETTING : Math.max(10, Math.round(capacity / 2));
  log(
    `  calibration: ${fmt(calLoad.status202)} accepted (${fmt(calLoad.status202 / calLoad.windowS)}/s), ${fmt(calSpan.n)} dispatched; the first ${fmt(calSpan.n95)} (95%) ` +
      `${fmt(calSpan.us / 1e6, 2)} s after the first order was created (all of them after ${fmt(calSpan.usAll / 1e6, 2)} s) = capacity ${fmt(capacity)} orders/s end to end` +
      `${calOpen > 0 ? ` (${fmt(calOpen)} not dispatched within the bound)` : ''}; dispatched and notified ${fmt(calDrainS, 1)} s after the burst` +
      `${calPending > 0 ? ` (${fmt(calPending)} notifications still PENDING at the bound)` : ''}; ` +
      `the load runs at ${fmt(rate)}/s${FLUSH_RATE_SETTING > 0 ? ' (BENCH_FLUSH_RATE)' : " (half of it: the scheduler's ticks and a noisy machine need the margin)"}`,
  );
  return {
    rate,
    figures: {
      orders: CALIBRATE_RATE * calSeconds,
      drainSeconds: calDrainS,
      accepted: calLoad.status202,
      acceptedPerSec: calLoad.status202 / calLoad.windowS,
      dispatched: calSpan.n,
      seconds95: calSpan.us / 1e6,
      secondsAll: calSpan.usAll / 1e6,
      capacityPerSec: capacity,
    },
  };
}

// -- the FLUSHALL: at mid-load, Redis emptied, what was lost noted, and the tracker started

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

// -- the figures once the load drained: recovery times, end-to-end latency by what each order saw of the flush, no notification twice

/** What the dev provider says it delivered. */
export interface ProviderRead {
  readonly stats: Record<string, number> | null;
  readonly messages: readonly { orderId: string; kind: string }[];
  readonly listed: number;
}

export async function readProvider(providerUrl: string): Promise<ProviderRead> {
  try {
    const control = await fetch(`${providerUrl}/control`, { signal: AbortSignal.timeout(5000) });
    const stats = ((await control.json()) as { stats: Record<string, number> }).stats;
    const listed = await fetch(`${providerUrl}/v1/messages`, { signal: AbortSignal.timeout(10_000) });
    const body = (await listed.json()) as { count: number; messages: { orderId: string; kind: string }[] };
    return { stats, messages: body.messages, listed: body.count };
  } catch (error) {
    log(`  bench: could not read the dev provider: ${error instanceof Error ? error.message : String(error)}`);
    return { stats: null, messages: [], listed: 0 };
  }
}

/** The notifications: each (order, kind) delivered once, the ledger and the provider agreeing. */
async function notificationFigures(db: Db, provider: ProviderRead) {
  const perKey = new Map<string, number>();
  for (const m of provider.messages) perKey.set(`${m.orderId}:${m.kind}`, (perKey.get(`${m.orderId}:${m.kind}`) ?? 0) + 1);
  const sentTwice = [...perKey.values()].filter((n) => n > 1).length;
  const ledger = Object.fromEntries(
    ((await db('notifications').select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: number | string }[]).map((r) => [r.status, Number(r.n)]),
  );
  const sentRows = (await db('notifications').select('order_id', 'kind').where('status', 'SENT')) as { order_id: string; kind: string }[];
  const listComplete = provider.stats !== null && provider.listed === provider.stats.deliveries;
  const sentNotListed = listComplete ? sentRows.filter((r) => !perKey.has(`${String(r.order_id)}:${r.kind}`)).length : null;
  const listedNotSent = listComplete ? perKey.size - (sentRows.length - (sentNotListed ?? 0)) : null;
  const dispatchedMissingNotification = Number(
    (
      (await db.raw(
        `SELECT COUNT(*) AS n FROM orders o WHERE o.status IN ('DISPATCHED', 'PICKED_UP', 'DELIVERED')
           AND (SELECT COUNT(*) FROM notifications n WHERE n.order_id = o.id AND n.status = 'SENT' AND n.kind IN ('customer.dispatched', 'merchant.dispatched')) < 2`,
      )) as [{ n: number | string }[]]
    )[0][0]?.n ?? 0,
  );
  const noDuplicates = sentTwice === 0 && (sentNotListed ?? 0) === 0 && (listedNotSent ?? 0) === 0 && ledger.SENT === provider.stats?.deliveries;
  return { ledger, provider: provider.stats, listed: provider.listed, listComplete, sentTwice, sentNotListed, listedNotSent, dispatchedMissingNotification, noDuplicates };
}

/** End-to-end latency (202 -> DISPATCHED, 202 -> last notification sent; MySQL timestamps) by what the order saw of the flush. */
async function latencyFigures(db: Db, f: Flush, mainStart: string) {
  const latencyRows = (
    (await db.raw(
      `SELECT o.id, o.created_at < ? AS before_flush,
              e.created_at IS NOT NULL AND e.created_at < ? AS done_before_flush,
              TIMESTAMPDIFF(MICROSECOND, o.created_at, e.created_at) AS us,
              TIMESTAMPDIFF(MICROSECOND, o.created_at, n.last_sent) AS notified_us,
              n.last_sent IS NOT NULL AND n.last_sent < ? AND n.pending = 0 AS notified_before_flush
         FROM orders o
         LEFT JOIN order_events e ON e.order_id = o.id AND e.to_status = 'DISPATCHED'
         LEFT JOIN (SELECT order_id, MAX(sent_at) AS last_sent, SUM(status <> 'SENT') AS pending FROM notifications GROUP BY order_id) n ON n.order_id = o.id
        WHERE o.created_at >= ?`,
      [f.at, f.before, f.before, mainStart],
    )) as [{ id: string; before_flush: number; done_before_flush: number; us: number | string | null; notified_us: number | string | null; notified_before_flush: number | null }[]]
  )[0];
  type LatencyRow = (typeof latencyRows)[number];
  // An order saw the flush if it was accepted before it and was not through the stage yet.
  const dispatchGroup = (pick: (r: LatencyRow) => boolean) => {
    const rows = latencyRows.filter(pick);
    return { dispatchMs: summarize(rows.filter((r) => r.us !== null).map((r) => Number(r.us) / 1000)), notDispatched: rows.filter((r) => r.us === null).length };
  };
  const notifiedGroup = (pick: (r: LatencyRow) => boolean) => {
    const rows = latencyRows.filter(pick);
    return { notifiedMs: summarize(rows.filter((r) => r.notified_us !== null).map((r) => Number(r.notified_us) / 1000)), notNotified: rows.filter((r) => r.notified_us === null).length };
  };
  const before = (r: LatencyRow) => Number(r.before_flush) === 1;
  const dispatchedBefore = (r: LatencyRow) => Number(r.done_before_flush) === 1;
  const notifiedBefore = (r: LatencyRow) => Number(r.notified_before_flush) === 1;
  return {
    dispatch: {
      neverSawTheFlush: dispatchGroup((r) => !before(r) || dispatchedBefore(r)),
      doneBeforeFlush: dispatchGroup((r) => before(r) && dispatchedBefore(r)),
      createdAfterFlush: dispatchGroup((r) => !before(r)),
      sawTheFlush: dispatchGroup((r) => before(r) && !dispatchedBefore(r)),
    },
    notified: {
      neverSawTheFlush: notifiedGroup((r) => !before(r) || notifiedBefore(r)),
      sawTheFlush: notifiedGroup((r) => before(r) && !notifiedBefore(r)),
    },
  };
}

export interface Part2Run {
  readonly db: Db;
  readonly flush: Flush;
  readonly tracker: FlushTracker | undefined;
  readonly provider: ProviderRead;
  readonly mainStart: string;
  /** performance.now() of the load's start and end, and of every accepted order done / notified (null: not within the bound). */
  readonly loadStart: number;
  readonly loadEnd: number;
  readonly allDoneAt: number | null;
  readonly allNotifiedAt: number | null;
  /** The load's 202s: the ids answered, and the bodies the intake refused. */
  readonly status202: number;
  readonly acceptedIds: readonly string[];
  readonly badBodies: number;
  readonly finalQueues: Record<'orders' | 'notifications' | 'maintenance', QueueCounts>;
  readonly riderResets: number;
  readonly workerNotes: readonly { at: number; msg: string }[];
}

/** The figures of part 2, logged, and returned for the results JSON. */
export async function part2Figures(r: Part2Run) {
  const { db, flush: f, tracker: tr, mainStart } = r;
  const notifications = await notificationFigures(db, r.provider);
  const finalStatus = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart));
  const rowIds = new Set(((await db('orders').select('id').where('created_at', '>=', mainStart)) as { id: string }[]).map((row) => String(row.id)));
  const lost = r.acceptedIds.filter((id) => !rowIds.has(id)).length + r.badBodies;
  const latency = await latencyFigures(db, f, mainStart);

  const afterFlush = (at: number | null) => (at === null ? null : seconds(f.perf, at));
  const figures = {
    flushAfterLoadS: seconds(r.loadStart, f.perf),
    ordersBackS: tr?.ordersBackS ?? null,
    notificationsBackS: tr?.notificationsBackS ?? null,
    preFlushDoneS: tr?.preFlushDoneS ?? null,
    preFlushNotifiedS: tr?.preFlushNotifiedS ?? null,
    allDoneAfterFlushS: afterFlush(r.allDoneAt),
    allNotifiedAfterFlushS: afterFlush(r.allNotifiedAt),
    allDoneAfterLoadEndS: r.allDoneAt === null ? null : seconds(r.loadEnd, r.allDoneAt),
  };
  const maxUncovered = tr ? Math.max(0, ...tr.samples.map((s) => s.uncovered)) : null;
  const maxUncoveredNotifications = tr ? Math.max(0, ...tr.samples.map((s) => s.uncoveredNotifications)) : null;

  log(`\n  results (part 2):`);
  log(
    `    orders: ${fmt(r.status202)} answered 202 in the load (${fmt(f.accepted202)} before the FLUSHALL), every 202 a row: ${lost === 0 ? 'yes' : `NO, ${fmt(lost)} missing`}; ` +
      `at the end: ${Object.entries(finalStatus).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}`,
  );
  log(
    `    after the FLUSHALL: the orders accepted before it were carried by live jobs again (the price batch their rows name, their zone's dispatch run), done, or owed to compensation ` +
      `after ${fmt(figures.ordersBackS, 2)} s (at most ${fmt(maxUncovered)} neither), their notifications' batches live again after ${fmt(figures.notificationsBackS, 2)} s ` +
      `(at most ${fmt(maxUncoveredNotifications)} not); all of them DISPATCHED or CANCELLED after ${fmt(figures.preFlushDoneS, 2)} s, notified after ${fmt(figures.preFlushNotifiedS, 2)} s`,
  );
  log(
    `    every accepted order done ${fmt(figures.allDoneAfterFlushS, 2)} s after the FLUSHALL (${fmt(figures.allDoneAfterLoadEndS, 2)} s after the load ended), ` +
      `every notification sent ${fmt(figures.allNotifiedAfterFlushS, 2)} s after it`,
  );
  for (const note of r.workerNotes.slice(0, 12)) log(`    worker at ${note.at >= f.wall ? '+' : ''}${fmt((note.at - f.wall) / 1000, 2)} s after the FLUSHALL: ${note.msg}`);
  if (r.workerNotes.length > 12) log(`    (${r.workerNotes.length - 12} more such lines)`);
  log(`    end to end, 202 -> DISPATCHED (MySQL timestamps):`);
  log(`      orders that never saw the flush: ${fmtSummary(latency.dispatch.neverSawTheFlush.dispatchMs)}`);
  log(`        of them, dispatched before it: ${fmtSummary(latency.dispatch.doneBeforeFlush.dispatchMs)}`);
  log(`        of them, created after it:     ${fmtSummary(latency.dispatch.createdAfterFlush.dispatchMs)}`);
  log(`      orders in flight at the flush:    ${fmtSummary(latency.dispatch.sawTheFlush.dispatchMs)}`);
  log(`    202 -> last notification sent:`);
  log(`      orders that never saw the flush: ${fmtSummary(latency.notified.neverSawTheFlush.notifiedMs)}`);
  log(`      orders with notifications owed at the flush: ${fmtSummary(latency.notified.sawTheFlush.notifiedMs)}`);
  const n = notifications;
  const stats = n.provider;
  log(
    `    notifications: ledger ${Object.entries(n.ledger).map(([s, c]) => `${s} ${fmt(c)}`).join(', ')}; dev provider ${stats ? `${fmt(stats.deliveries)} delivered, ${fmt(stats.duplicates)} repeats answered with the first message (not delivered again), ${fmt(stats.failures)} failures, ${fmt(stats.requests)} requests` : 'n/a'}; ` +
      `GET /v1/messages listed ${fmt(n.listed)}${n.listComplete ? ' (all of them)' : ' (NOT all: the list keeps the newest 10,000)'}: ` +
      `${fmt(n.sentTwice)} (orderId, kind) delivered more than once; SENT rows not delivered ${fmt(n.sentNotListed)}, delivered without a SENT row ${fmt(n.listedNotSent)}; ` +
      `dispatched orders without both notifications SENT: ${fmt(n.dispatchedMissingNotification)}`,
  );
  log(
    `    queues at the end: orders failed ${fmt(r.finalQueues.orders.failed)}, notifications failed ${fmt(r.finalQueues.notifications.failed)}, ` +
      `maintenance completed ${fmt(r.finalQueues.maintenance.completed)} / failed ${fmt(r.finalQueues.maintenance.failed)}; rider simulator ${fmt(r.riderResets)} resets`,
  );

  return {
    lost,
    flush: {
      mysqlAt: f.at,
      afterLoadS: figures.flushAfterLoadS,
      flushallMs: f.ms,
      accepted202Before: f.accepted202,
      statusOfOrdersBefore: f.statusAt,
      pendingNotificationsBefore: f.pendingAt,
      queuesJustBefore: f.lostJobs,
    },
    figures,
    maxUncovered,
    maxUncoveredNotifications,
    latency,
    finalStatus,
    finalQueues: r.finalQueues,
    notifications,
    workerAfterFlush: r.workerNotes.map((note) => ({ afterFlushS: (note.at - f.wall) / 1000, msg: note.msg })),
    trackerSamples: tr?.samples ?? [],
  };
}

export async function part2(): Promise<Record<string, unknown>> {
  log(`\n== part 2: recovery after a FLUSHALL under load (a private Redis; the fleet as the Procfile runs it)`);
  const redisServer = await PrivateRedis.start();
  const { env: fleetEnv, webUrl, providerUrl } = await benchFleetEnv({
    mysqlUrl: MYSQL_URL_2,
    redisUrl: redisServer.url,
    queuePrefix: PREFIX_2,
    cachePrefix: CACHE_PREFIX_2,
    logLevel: LOG_LEVEL,
    extra: {
      METRICS_PORT: '0',
      DISPATCH_WINDOW_MS: process.env.DISPATCH_WINDOW_MS || '200',
      COMPENSATE_CRON: process.env.COMPENSATE_CRON || '*/2 * * * * *',
      RECONCILE_CRON: process.env.RECONCILE_CRON || '1-59/2 * * * * *',
      RECONCILE_CREATED_AFTER_MS: process.env.RECONCILE_CREATED_AFTER_MS || '3000',
      RECONCILE_STUCK_AFTER_MS: process.env.RECONCILE_STUCK_AFTER_MS || '3000',
      RECONCILE_NOTIFY_AFTER_MS: process.env.RECONCILE_NOTIFY_AFTER_MS || '5000',
      RETRY_BASE_MS: process.env.RETRY_BASE_MS || '1000',
      RETRY_MAX_MS: process.env.RETRY_MAX_MS || '10000',
      WARMUP_CRON: process.env.WARMUP_CRON ?? '',
    },
  });
  const config = loadConfig(fleetEnv);
  log(
    `  private redis-server on ${redisServer.url}; queue prefix ${PREFIX_2}; COMPENSATE_CRON "${config.compensateCron.join(';')}", ` +
      `RECONCILE_CRON "${config.reconcileCron.join(';')}", RECONCILE_CREATED_AFTER_MS ${config.reconcileCreatedAfterMs}, ` +
      `RECONCILE_STUCK_AFTER_MS ${config.reconcileStuckAfterMs}, RECONCILE_NOTIFY_AFTER_MS ${config.reconcileNotifyAfterMs}, ` +
      `RETRY_BASE_MS ${config.retryBaseMs}, DISPATCH_WINDOW_MS ${config.dispatchWindowMs}, LOG_LEVEL ${LOG_LEVEL}`,
  );
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`  database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const { producer, queues } = benchProducer(redis, PREFIX_2);
  const riders = new RiderSimulator(db, RIDER_RESET_MS);
  let flushStep: FlushStep | undefined;
  try {
    const merchants = benchMerchants(ZONES);
    await insertMerchants(db, merchants);
    await insertRiders(db, merchants, RIDERS_PER_ZONE, RIDER_CAPACITY);
    const client = await createApiClient(db, new IdGenerator(63), `recovery bench ${new Date().toISOString()}`);
    log(`  ${ZONES} zones with a merchant and ${RIDERS_PER_ZONE} riders of capacity ${RIDER_CAPACITY} each; a rider simulator frees their slots every ${RIDER_RESET_MS} ms`);

    // -- the fleet
    const starts: [string, string, RegExp, () => Promise<boolean>][] = [
      ['provider', 'workers/dev-provider.ts', /dev provider ready/, () => httpOk(`${providerUrl}/control`)],
      ['web', 'workers/web.ts', /web listening/, () => httpOk(`${webUrl}/readyz`)],
      ['worker', 'workers/orders.ts', /worker ready/, async () => (await queues.orders.getWorkersCount()) >= 1 && (await queues.maintenance.getWorkersCount()) >= 1],
      ['notifier', 'workers/notifier.ts', /notifier ready/, async () => (await queues.notifications.getWorkersCount()) >= 1],
    ];
    const t0 = performance.now();
    const started = await Promise.allSettled(
      starts.map(async ([procName, file, readyLine, probe], i) => {
        // The worker at info: its compensation and reconcile summaries (logged only when they put something back).
        const env = { ...fleetEnv, NODE_ID: String(21 + i), ...(procName === 'worker' ? { LOG_LEVEL: 'info' } : {}) };
        const proc = await startProcess(procName, env, readyLine, probe);
        log(`  [${procName}] ${file} ready: pid ${proc.pid}, ${fmt(seconds(proc.startMs), 1)} s`);
      }),
    );
    const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    log(`  fleet ready in ${fmt(seconds(t0), 1)} s (the scheduler starts after the calibration): web ${webUrl}, dev provider ${providerUrl}`);
    riders.start();
    await sleep(1000);

    const bodies = merchants.map((m) =>
      JSON.stringify({
        merchantId: m.id,
        dropoff: { lat: +(m.lat + 0.01).toFixed(6), lng: +(m.lng + 0.01).toFixed(6), address: '88 Century Ave', phone: '+8613800000000' },
        items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
        note: 'ring twice',
      }),
    );

    // -- calibration: the pipeline's capacity, measured
    const calibration = await calibrate({ db, notificationsQueue: queues.notifications, webUrl, apiKey: client.key, bodies });
    const { rate } = calibration;

    // -- the scheduler: compensation and reconcile ticks from now on. Ready once its first tick is on
    // the maintenance queue (its ready line is at info).
    const schedulerProc = await startProcess('scheduler', { ...fleetEnv, NODE_ID: '26' }, /scheduler ready/, async () => {
      const c = await queues.maintenance.getJobCounts('wait', 'active', 'completed', 'failed', 'delayed');
      return Object.values(c).some((n) => n > 0);
    });
    log(`  [scheduler] workers/scheduler.ts ready: pid ${schedulerProc.pid}, ${fmt(seconds(schedulerProc.startMs), 1)} s`);
    await sleep(2000);

    // -- the load, with the FLUSHALL at mid-run
    const loadSeconds = Math.max(10, Math.ceil(FLUSH_ORDERS / rate));
    const flushAfterS = loadSeconds / 2;
    const connections = Math.min(32, rate);
    log(`\n  load: ${fmt(rate)} orders/s for ${loadSeconds} s (${fmt(rate * loadSeconds)} orders, ${connections} connections); FLUSHALL after ${fmt(flushAfterS, 1)} s`);
    const mainStart = await mysqlNow(db);
    const counters = newLoadCounters();
    const loadStart = performance.now();
    const step = flushDuringLoad({ db, redis, producer, queues, zones: merchants.map((m) => m.zoneId), mainStart, loadStart, afterS: flushAfterS, accepted: () => counters.status202 });
    flushStep = step;
    const run = await runOrderLoad({
      url: webUrl,
      apiKey: client.key,
      keyPrefix: `flush-${Date.now().toString(36)}`,
      bodies,
      connections,
      seconds: loadSeconds,
      rate: { overall: rate, stagger: true },
      collectIds: true,
      counters,
      startedAt: loadStart,
      progressLabel: 'load',
    });
    step.cancel();
    const loadEnd = performance.now();
    log(
      `  load done: ${fmt(run.responses)} responses in ${fmt(run.windowS, 1)} s, ${fmt(run.status202)} x 202, ${fmt(run.result.non2xx)} non-2xx, ` +
        `${fmt(run.result.errors)} errors; intake p50 ${run.result.latency.p50} ms, p99 ${run.result.latency.p99} ms`,
    );
    if (fleetState.failure) throw new Error(fleetState.failure);
    const f = step.flush;
    if (!f) throw new Error('the FLUSHALL did not happen during the load');

    // -- until every accepted order is done and notified (bounded)
    log(`\n  drain: until every accepted order is DISPATCHED or CANCELLED and every notification SENT (at most ${PART2_DRAIN_BOUND_S} s)`);
    let allDoneAt: number | null = null;
    let allNotifiedAt: number | null = null;
    let lastForced = -Infinity;
    while (seconds(loadEnd) < PART2_DRAIN_BOUND_S) {
      if (fleetState.failure) throw new Error(fleetState.failure);
      const status = await statusCounts(db, (q) => void q.where('created_at', '>=', mainStart));
      const open = openOf(status);
      const pending = await pendingNotifications(db);
      if (open === 0 && allDoneAt === null) allDoneAt = performance.now();
      if (open === 0 && pending === 0) {
        allNotifiedAt = performance.now();
        break;
      }
      const t = seconds(loadEnd);
      const force = t - lastForced >= 5;
      if (force) lastForced = t;
      progress(
        `  [drain ${fmt(t, 1)} s] open ${fmt(open)} (${Object.entries(status).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')}), notifications PENDING ${fmt(pending)}`,
        force,
      );
      await sleep(250);
    }
    await step.tracker?.stop();
    await riders.stop();

    // -- figures
    const finalQueues = { orders: await queueCounts(queues.orders), notifications: await queueCounts(queues.notifications), maintenance: await queueCounts(queues.maintenance) };
    await stopProcesses(['scheduler', 'web', 'worker', 'notifier']);
    const provider = await readProvider(providerUrl);
    await stopProcesses(['provider']);
    const workerNotes = (running.get('worker')?.notable ?? exitedNotes.worker ?? []).filter((n) => n.at >= f.wall - 1000);
    const results = await part2Figures({
      db,
      flush: f,
      tracker: step.tracker,
      provider,
      mainStart,
      loadStart,
      loadEnd,
      allDoneAt,
      allNotifiedAt,
      status202: run.status202,
      acceptedIds: counters.ids,
      badBodies: counters.badBodies,
      finalQueues,
      riderResets: riders.resets,
      workerNotes,
    });
    const { lost, ...rest } = results;
    return {
      settings: {
        calibrateOrders: calibration.figures.orders,
        calibrateRate: CALIBRATE_RATE,
        flushOrders: FLUSH_ORDERS,
        rate,
        loadSeconds,
        connections,
        compensateCron: config.compensateCron,
        reconcileCron: config.reconcileCron,
        reconcileCreatedAfterMs: config.reconcileCreatedAfterMs,
        reconcileStuckAfterMs: config.reconcileStuckAfterMs,
        reconcileNotifyAfterMs: config.reconcileNotifyAfterMs,
        retryBaseMs: config.retryBaseMs,
        dispatchWindowMs: config.dispatchWindowMs,
        logLevel: LOG_LEVEL,
        zones: ZONES,
        ridersPerZone: RIDERS_PER_ZONE,
        riderCapacity: RIDER_CAPACITY,
      },
      calibration: calibration.figures,
      load: {
        windowS: run.windowS,
        status202: run.status202,
        non2xx: run.result.non2xx,
        errors: run.result.errors,
        httpLatencyMs: { p50: run.result.latency.p50, p99: run.result.latency.p99, max: run.result.latency.max },
        lost,
      },
      ...rest,
      fleet: Object.fromEntries(['provider', 'web', 'worker', 'notifier', 'scheduler'].map((n) => [n, { exit: exits.get(n) ?? null }])),
    };
  } finally {
    flushStep?.cancel();
    await flushStep?.tracker?.stop().catch(() => undefined);
    await riders.stop().catch(() => undefined);
    await stopProcesses(['scheduler', 'web', 'worker', 'notifier', 'provider']).catch(() => undefined);
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await db.destroy();
    await redisServer.stop();
  }
}
