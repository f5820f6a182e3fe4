/**
 * Part 1: --orders orders in failed or orphaned states re-driven by a real worker process (one
 * orders.compensate and one orders.reconcile job, added through the producer), the orders and
 * dispatch queues paused; done when the exact check passes (every order in its next state, the
 * batch its rows name live and carrying it). Target at most 60 s.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { retryPolicyFrom } from '../../shared/orders/retry-schedule.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants } from '../lib/bench-zones.ts';
import { cpuSnapshot, cpuWindow, mariadbPids } from '../lib/cpu.ts';
import { queueCounts } from '../lib/queue-counts.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { summarize } from '../lib/stats.ts';
import { baseline } from './baseline.ts';
import { seconds, statusCounts, benchProducer } from './helpers.ts';
import { type Part1Check, checkPart1, type MaintenanceJobView, viewJob } from './part1-check.ts';
import { jobSamples } from './part1-samples.ts';
import { fleetState, startProcess, stopProcesses, warningsOf } from './processes.ts';
import { SEED_KINDS, seedOrders } from './seed.ts';
import { ORDERS, BASELINE_ORDERS, BASELINE_CONCURRENCIES, MYSQL_URL_1, PREFIX_1, CACHE_PREFIX_1, MIX, ORPHAN_BATCH, SEED_CHUNK, ZONES, PART1_BOUND_S, TARGET_S } from './settings.ts';

/** The bench's client may go as fast as the load: the rate limiter's check runs (and costs what it costs), it never refuses. */
const BENCH_RATE = { ratePerSecond: MAX_RATE_PER_SECOND };

/** CREATED orders naming no price batch, and the batches named by CREATED orders and by PENDING ledger rows. */
async function namedBatches(db: Db): Promise<{ createdUnnamed: number; priceBatches: number; notificationBatches: number }> {
  const [created, pending] = (await Promise.all([
    db.raw("SELECT COALESCE(SUM(price_job_id IS NULL), 0) AS unnamed, COUNT(DISTINCT price_job_id) AS batches FROM orders WHERE status = 'CREATED'"),
    db.raw("SELECT COUNT(DISTINCT job_id) AS batches FROM notifications WHERE status = 'PENDING'"),
  ])) as [[{ unnamed: number | string; batches: number | string }[]], [{ batches: number | string }[]]];
  const [orders, ledger] = [created[0], pending[0]];
  return { createdUnnamed: Number(orders[0]?.unnamed ?? 0), priceBatches: Number(orders[0]?.batches ?? 0), notificationBatches: Number(ledger[0]?.batches ?? 0) };
}

export async function part1(): Promise<Record<string, unknown>> {
  log(`\n== part 1: ${fmt(ORDERS)} orders in failed or orphaned states re-driven by a worker process (target <= ${TARGET_S} s)`);
  const redisServer = await PrivateRedis.start();
  log(`  private redis-server on ${redisServer.url} (no persistence); queue prefix ${PREFIX_1}, cache prefix ${CACHE_PREFIX_1}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MYSQL_URL: MYSQL_URL_1,
    REDIS_URL: redisServer.url,
    QUEUE_PREFIX: PREFIX_1,
    CACHE_PREFIX: CACHE_PREFIX_1,
    // info: the worker's compensation and reconcile summaries (the order pipeline is paused: quiet).
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    NODE_ID: '11',
    METRICS_PORT: '0',
  };
  const config = loadConfig(env);
  const policy = retryPolicyFrom(config);
  log(
    `  worker settings: MAINTENANCE_BATCH_SIZE ${config.maintenanceBatchSize}, RECONCILE_CREATED_AFTER_MS ${config.reconcileCreatedAfterMs}, ` +
      `WORKER_WATCHDOG_MS ${config.workerWatchdogMs}, JOB_LOCK_MS ${config.jobLockMs}, DB_POOL_MAX ${config.dbPoolMax} (the maintenance jobs use at most 4)`,
  );
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`  database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const { producer, queues } = benchProducer(redis, PREFIX_1);
  try {
    const merchants = benchMerchants(ZONES);
    await insertMerchants(db, merchants);
    const client = await createApiClient(db, new IdGenerator(62), `recovery bench ${new Date().toISOString()}`, BENCH_RATE);

    // -- seed
    log(
      `  seeding: ${fmt(MIX.pricingFailed * 100)}% PRICING_FAILED (${fmt(MIX.escalatePricing * 100)}% of them at the budget of ${policy.budget.PRICING_FAILED}), ` +
        `${fmt(MIX.dispatchFailed * 100)}% DISPATCH_FAILED (${fmt(MIX.escalateDispatch * 100)}% at the budget of ${policy.budget.DISPATCH_FAILED}), ` +
        `the rest orphaned CREATED (${fmt((1 - MIX.unnamedOrphans) * 100)}% of them in lost price batches of ${fmt(ORPHAN_BATCH)} named on their rows, ` +
        `${fmt(MIX.unnamedOrphans * 100)}% naming none, as rows from before batches); multi-row INSERTs of ${fmt(SEED_CHUNK)}`,
    );
    const seeded = await seedOrders(db, { count: ORDERS, clientId: client.id, merchants, policy, label: 'seed', seed: 1 });
    log(
      `  seeded ${fmt(ORDERS)} orders in ${fmt(seeded.seconds, 1)} s (${fmt(seeded.rowsPerSec)} rows/s): ` +
        SEED_KINDS.map((k) => `${k} ${fmt(seeded.byKind[k])}`).join(', '),
    );

    // -- the worker, with the orders and dispatch queues paused (see the head of this file)
    await Promise.all([queues.orders.pause(), queues.dispatch.pause()]);
    const worker = await startProcess('worker', env, /worker ready/, async () => {
      const [a, b] = await Promise.all([queues.orders.getWorkersCount(), queues.maintenance.getWorkersCount()]);
      return a >= 1 && b >= 1;
    });
    log(`  worker (workers/orders.ts) ready: pid ${worker.pid}, ${fmt(seconds(worker.startMs), 1)} s; orders and dispatch queues paused`);
    await sleep(1000);

    const cpuGroups = {
      worker: () => [worker.pid],
      mariadbd: mariadbPids,
      redis: () => [redisServer.serverPid() ?? -1],
    };
    const orphans = seeded.byKind.orphan + seeded.byKind['orphan-unnamed'];
    const expectedCounts = {
      CREATED: seeded.byKind.pricing + orphans,
      PRICED: seeded.byKind.dispatch,
      CANCELLED: seeded.byKind['pricing-escalate'] + seeded.byKind['dispatch-escalate'],
    };

    // -- the recovery
    const cpuStart = cpuSnapshot(cpuGroups);
    const t0 = performance.now();
    const enqueuedAt = Date.now();
    const compensateId = await producer.add('orders.compensate', { reason: 'cli', at: enqueuedAt });
    const reconcileId = await producer.add('orders.reconcile', { reason: 'cli', at: enqueuedAt });
    log(`  enqueued ${compensateId} and ${reconcileId} on the maintenance queue (through the producer); the worker runs them one at a time`);

    let doneAt: number | null = null;
    let check: Part1Check | null = null;
    let lastForced = -Infinity;
    const samples: Record<string, unknown>[] = [];
    let exactChecks = 0;
    while (seconds(t0) < PART1_BOUND_S) {
      if (fleetState.failure) throw new Error(fleetState.failure);
      const tick = performance.now();
      const [status, named, ordersQ, notificationsQ, compensate, reconcile] = await Promise.all([
        statusCounts(db),
        namedBatches(db),
        queueCounts(queues.orders),
        queueCounts(queues.notifications),
        Job.fromId(queues.maintenance, compensateId).then((j) => (j ? j.getState() : 'missing')),
        Job.fromId(queues.maintenance, reconcileId).then((j) => (j ? j.getState() : 'missing')),
      ]);
      const t = seconds(t0);
      const failedLeft = (status.PRICING_FAILED ?? 0) + (status.DISPATCH_FAILED ?? 0);
      const moved = ORDERS - failedLeft - orphans; // the failed ones moved so far
      const { createdUnnamed, priceBatches, notificationBatches } = named;
      samples.push({ t: +t.toFixed(2), status, ...named, ordersWait: ordersQ.wait, notificationsWait: notificationsQ.wait, compensate, reconcile });
      const force = t - lastForced >= 2;
      if (force) lastForced = t;
      progress(
        `  [${fmt(t, 1)} s] failed left ${fmt(failedLeft)} (re-driven or escalated ${fmt(moved)}, ${fmt(moved / Math.max(t, 0.001))}/s) | ` +
          `CREATED ${fmt(status.CREATED ?? 0)} PRICED ${fmt(status.PRICED ?? 0)} CANCELLED ${fmt(status.CANCELLED ?? 0)} | ` +
          `CREATED naming no batch ${fmt(createdUnnamed)} | waiting/named: price batches ${fmt(ordersQ.wait)}/${fmt(priceBatches)}, ` +
          `notification batches ${fmt(notificationsQ.wait)}/${fmt(notificationBatches)} | ` +
          `compensate ${compensate}, reconcile ${reconcile}`,
        force,
      );
      // The counts first (cheap); the exact check once they say it can pass: nothing failed is
      // left, every CREATED order names a batch, and as many batches wait as the rows name.
      if (
        failedLeft === 0 &&
        (status.CREATED ?? 0) === expectedCounts.CREATED &&
        createdUnnamed === 0 &&
        ordersQ.wait >= priceBatches &&
        notificationsQ.wait >= notificationBatches
      ) {
        exactChecks += 1;
        check = await checkPart1(db, redis, producer, queues, seeded);
        if (check.ok) {
          doneAt = performance.now(); // conservative: when the check that proved it finished
          break;
        }
      }
      if (compensate === 'failed' && reconcile === 'failed') break;
      const wait = 250 - (performance.now() - tick);
      if (wait > 0) await sleep(wait);
    }
    const cpuEnd = cpuSnapshot(cpuGroups);
    const totalS = doneAt === null ? null : seconds(t0, doneAt);
    if (doneAt === null) {
      log(`  NOT every order moved within ${PART1_BOUND_S} s`);
      check = await checkPart1(db, redis, producer, queues, seeded);
    } else {
      log(`  every order moved to its next state after ${fmt(totalS, 2)} s (checked exactly in ${fmt(check!.checkMs)} ms; ${exactChecks} exact check(s))`);
    }
    // Let the jobs finish (they may still be tidying up: the reconcile pass over PENDING notifications).
    const jobsBound = performance.now() + 60_000;
    let jobs = await Promise.all([viewJob(queues.maintenance, compensateId, enqueuedAt), viewJob(queues.maintenance, reconcileId, enqueuedAt)]);
    while (jobs.some((j) => !['completed', 'failed', 'missing'].includes(j.state)) && performance.now() < jobsBound) {
      await sleep(250);
      jobs = await Promise.all([viewJob(queues.maintenance, compensateId, enqueuedAt), viewJob(queues.maintenance, reconcileId, enqueuedAt)]);
    }
    const [compensateJob, reconcileJob] = jobs as [MaintenanceJobView, MaintenanceJobView];

    // -- what is in MySQL and Redis now
    const finalStatus = await statusCounts(db);
    const finalQueues = { orders: await queueCounts(queues.orders), dispatch: await queueCounts(queues.dispatch), notifications: await queueCounts(queues.notifications) };
    const events = (await db('order_events')
      .select('from_status', 'to_status')
      .count({ n: '*' })
      .where('actor', 'like', 'scheduler:compensate%')
      .groupBy('from_status', 'to_status')) as { from_status: string; to_status: string; n: number | string }[];
    // Each event names the job that made its transition: here, the compensation job.
    const eventsByJob = Object.fromEntries(
      ((await db('order_events').select('job_id').count({ n: '*' }).where('actor', 'like', 'scheduler:%').groupBy('job_id')) as { job_id: string | null; n: number | string }[]).map(
        (row) => [row.job_id ?? 'none', Number(row.n)],
      ),
    );
    // One INSERT INTO order_events per batch and status: its rows share CURRENT_TIMESTAMP(3), so the
    // distinct timestamps are the batches, and their spacing is the time per batch.
    const batchRows = (await db('order_events')
      .select('created_at')
      .count({ n: '*' })
      .where('actor', 'like', 'scheduler:compensate%')
      .groupBy('created_at')
      .orderBy('created_at')) as { created_at: Date; n: number | string }[];
    const batchGapsMs = batchRows.slice(1).map((row, i) => new Date(row.created_at).getTime() - new Date(batchRows[i]!.created_at).getTime());
    const batches = { count: batchRows.length, ordersPerBatch: summarize(batchRows.map((r) => Number(r.n))), gapMs: summarize(batchGapsMs) };
    const samplesOfJobs = await jobSamples(db, redis, queues, seeded);
    const cpu = cpuWindow(cpuStart, cpuEnd);
    const ordersPerSec = totalS === null ? null : ORDERS / totalS;

    log(`\n  results (part 1):`);
    log(
      `    MySQL after: ${Object.entries(finalStatus).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')} ` +
        `(expected CREATED ${fmt(expectedCounts.CREATED)}, PRICED ${fmt(expectedCounts.PRICED)}, CANCELLED ${fmt(expectedCounts.CANCELLED)})`,
    );
    log(`    order_events by the compensation: ${events.map((e) => `${e.from_status} -> ${e.to_status} ${fmt(Number(e.n))}`).join(', ')}`);
    log(`    order_events of the maintenance jobs by the job they name: ${Object.entries(eventsByJob).map(([job, n]) => `${job} ${fmt(n)}`).join(', ')}`);
    log(
      `    Redis after: orders queue ${fmt(finalQueues.orders.wait)} batches waiting (paused), notifications queue ${fmt(finalQueues.notifications.wait)} batches waiting; ` +
        `exact check: ${check?.ok ? `every order in its next state, the batch its rows name live and carrying it (${fmt(check.priceBatches)} price batches, ${fmt(check.notificationBatches)} notification batches)` : `FAILED ${JSON.stringify(check)}`}` +
        (check && check.strayPriceJobs ? `; ${fmt(check.strayPriceJobs)} live price jobs no CREATED order names` : ''),
    );
    for (const s of samplesOfJobs) log(`    sample ${JSON.stringify(s)}`);
    for (const job of [compensateJob, reconcileJob]) {
      log(
        `    ${job.id}: ${job.state}, attempts ${job.attemptsMade}, waited ${fmt(job.queuedMs)} ms, ran ${fmt(job.runMs)} ms` +
          (job.failedReason ? `, failed: ${job.failedReason}` : '') +
          `; returned ${JSON.stringify(job.returnvalue)}`,
      );
    }
    log(
      `    compensation batches (order_events timestamps): ${fmt(batches.count)} batches, ${fmt(batches.ordersPerBatch.p50)} orders each (median); ` +
        `one every ${fmt(batches.gapMs.p50)} ms (median; p95 ${fmt(batches.gapMs.p95)}, max ${fmt(batches.gapMs.max)})`,
    );
    for (const line of worker.notable.slice(0, 20)) log(`    worker at +${fmt((line.at - enqueuedAt) / 1000, 2)} s: ${line.msg}`);
    // The maintenance worker runs one job at a time: did the reconcile wait for the compensation?
    const watchdogReplacements = worker.notable.filter((n) => /worker stuck.*queue maintenance/.test(n.msg)).length;
    const compensationEndS = ((worker.notable.find((n) => /^compensation:/.test(n.msg) && !/^compensation: 0 due/.test(n.msg))?.at ?? NaN) - enqueuedAt) / 1000;
    const reconcileStartS = reconcileJob.queuedMs === null ? NaN : reconcileJob.queuedMs / 1000;
    const overlapped = reconcileStartS < compensationEndS;
    log(
      `    the compensation's work ended at +${fmt(compensationEndS, 2)} s; the reconcile started at +${fmt(reconcileStartS, 2)} s` +
        (overlapped
          ? ` (alongside it: the worker's watchdog replaced the busy maintenance worker ${watchdogReplacements} time(s) and the replacement took the reconcile)`
          : ' (after it, as the maintenance worker runs one job at a time)'),
    );
    log(
      `    CPU over the recovery (% of one core): worker ${fmt(cpu.percent.worker)}, mariadbd ${fmt(cpu.percent.mariadbd)}, ` +
        `redis ${fmt(cpu.percent.redis)}, this bench ${fmt(cpu.percent.bench)}; machine busy ${fmt(cpu.machineBusyPercent)}% of ${cpus().length} cores`,
    );
    log(
      `    ${fmt(ORDERS)} orders moved in ${fmt(totalS, 2)} s = ${fmt(ordersPerSec)} orders/s; target <= ${TARGET_S} s: ` +
        `${totalS !== null && totalS <= TARGET_S && check?.ok ? 'PASS' : 'FAIL'}`,
    );

    await stopProcesses(['worker']);

    // -- the baseline: one order at a time, in this process
    const baselines: Record<string, unknown>[] = [];
    if (BASELINE_ORDERS > 0) {
      for (const [i, concurrency] of BASELINE_CONCURRENCIES.entries()) {
        baselines.push(await baseline(db, config, policy, { clientId: client.id, merchants, concurrency, seed: 100 + i }));
      }
    }

    return {
      settings: {
        orders: ORDERS,
        mix: MIX,
        orphanBatch: ORPHAN_BATCH,
        budgets: policy.budget,
        batchSize: config.maintenanceBatchSize,
        createdAfterMs: config.reconcileCreatedAfterMs,
        workerWatchdogMs: config.workerWatchdogMs,
        jobLockMs: config.jobLockMs,
      },
      seed: { seconds: seeded.seconds, rowsPerSec: seeded.rowsPerSec, byKind: seeded.byKind },
      expected: expectedCounts,
      way: 'worker process (workers/orders.ts) running one orders.compensate and one orders.reconcile job from the maintenance queue (added through JobProducer); orders and dispatch queues paused',
      totalSeconds: totalS,
      ordersPerSec,
      targetSeconds: TARGET_S,
      verdict: totalS !== null && totalS <= TARGET_S && check?.ok ? 'PASS' : 'FAIL',
      check,
      jobs: { compensate: compensateJob, reconcile: reconcileJob },
      sequence: { compensationEndS, reconcileStartS, overlapped, watchdogReplacements },
      batches,
      finalStatus,
      finalQueues,
      events: events.map((e) => ({ from: e.from_status, to: e.to_status, n: Number(e.n) })),
      eventsByJob,
      jobSamples: samplesOfJobs,
      cpu,
      worker: warningsOf(worker),
      samples,
      baselines,
    };
  } finally {
    await stopProcesses(['worker']).catch(() => undefined);
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await db.destroy();
    await redisServer.stop();
  }
}
