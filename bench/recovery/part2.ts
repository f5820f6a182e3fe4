/**
 * Part 2: recovery after a FLUSHALL under load, on a private Redis: the fleet from the Procfile,
 * a calibration of its capacity (part2-calibrate.ts), then a load at half of it with FLUSHALL at
 * mid-run (part2-flush.ts), tracked until every order accepted before it is carried again by the
 * live batch its rows name, and done (flush-tracker.ts); no notification twice (part2-results.ts).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig } from '../../shared/config.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders } from '../lib/bench-zones.ts';
import { queueCounts } from '../lib/queue-counts.ts';
import { httpOk } from '../lib/bench-process.ts';
import { RiderSimulator } from '../lib/rider-simulator.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { newLoadCounters, runOrderLoad } from '../lib/order-load.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { openOf } from './flush-tracker.ts';
import { seconds, mysqlNow, pendingNotifications, statusCounts, benchProducer } from './helpers.ts';
import { calibrate } from './part2-calibrate.ts';
import { flushDuringLoad, type FlushStep } from './part2-flush.ts';
import { part2Figures, readProvider } from './part2-results.ts';
import { running, exits, exitedNotes, fleetState, startProcess, stopProcesses, benchFleetEnv } from './processes.ts';
import { FLUSH_ORDERS, CALIBRATE_RATE, LOG_LEVEL, MYSQL_URL_2, PREFIX_2, CACHE_PREFIX_2, ZONES, RIDERS_PER_ZONE, RIDER_CAPACITY, RIDER_RESET_MS, PART2_DRAIN_BOUND_S } from './settings.ts';

/** The bench's client may go as fast as the load: the rate limiter's check runs (and costs what it costs), it never refuses. */
const BENCH_RATE = { ratePerSecond: MAX_RATE_PER_SECOND };

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
    const client = await createApiClient(db, new IdGenerator(63), `recovery bench ${new Date().toISOString()}`, BENCH_RATE);
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
