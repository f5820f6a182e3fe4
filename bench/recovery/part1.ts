/**
 * Part 1: --orders orders in failed or orphaned states re-driven by a real worker process (one
 * orders.compensate and one orders.reconcile job), the orders and dispatch queues paused; done when
 * the exact check passes. Target at most 60 s.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { loadConfig } from '../../shared/config.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { retryPolicyFrom } from '../../shared/orders/retry-schedule.ts';
import { enqueueOrderMaintenance } from '../../shared/queues/maintenance-producer.ts';
import { notificationJobId, priceJobId } from '../../shared/queues/payloads.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants } from '../lib/bench-zones.ts';
import { queueCounts } from '../lib/queue-counts.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { pidsNamed } from '../lib/proc-stats.ts';
import { baseline } from './baseline.ts';
import { seconds, stats, statusCounts, benchQueues } from './helpers.ts';
import { type Part1Check, checkPart1, type MaintenanceJobView, viewJob } from './part1-check.ts';
import { cpuSnapshot, cpuWindow, fleetState, startProcess, stopProcesses, warningsOf } from './processes.ts';
import { SEED_KINDS, seedOrders } from './seed.ts';
import { settings, ORDERS, BASELINE_ORDERS, BASELINE_CONCURRENCIES, LOG_LEVEL, MYSQL_URL_1, PREFIX_1, CACHE_PREFIX_1, MIX, SEED_CHUNK, ZONES, PART1_BOUND_S, TARGET_S } from './settings.ts';

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
  const queues = benchQueues(redis, PREFIX_1);
  try {
    const merchants = benchMerchants(ZONES);
    await insertMerchants(db, merchants);
    const client = await createApiClient(db, new IdGenerator(62), `recovery bench ${new Date().toISOString()}`);

    // -- seed
    log(
      `  seeding: ${fmt(MIX.pricingFailed * 100)}% PRICING_FAILED (${fmt(MIX.escalatePricing * 100)}% of them at the budget of ${policy.budget.PRICING_FAILED}), ` +
        `${fmt(MIX.dispatchFailed * 100)}% DISPATCH_FAILED (${fmt(MIX.escalateDispatch * 100)}% at the budget of ${policy.budget.DISPATCH_FAILED}), ` +
        `the rest orphaned CREATED; multi-row INSERTs of ${fmt(SEED_CHUNK)}`,
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

    const cpuPids = {
      worker: [worker.pid],
      mariadbd: pidsNamed(['mariadbd', 'mysqld']),
      redis: [redisServer.serverPid() ?? -1],
    };
    const expectedCounts = {
      CREATED: seeded.byKind.pricing + seeded.byKind.orphan,
      PRICED: seeded.byKind.dispatch,
      CANCELLED: seeded.byKind['pricing-escalate'] + seeded.byKind['dispatch-escalate'],
    };

    // -- the recovery
    const cpuStart = cpuSnapshot(cpuPids);
    const t0 = performance.now();
    const enqueuedAt = Date.now();
    const compensateId = await enqueueOrderMaintenance(queues.maintenance, 'compensate', 'cli', new Date(enqueuedAt), 5000);
    const reconcileId = await enqueueOrderMaintenance(queues.maintenance, 'reconcile', 'cli', new Date(enqueuedAt), 5000);
    log(`  enqueued ${compensateId} and ${reconcileId} on the maintenance queue; the worker runs them one at a time`);

    let doneAt: number | null = null;
    let check: Part1Check | null = null;
    let lastForced = -Infinity;
    const samples: Record<string, unknown>[] = [];
    let exactChecks = 0;
    while (seconds(t0) < PART1_BOUND_S) {
      if (fleetState.failure) throw new Error(fleetState.failure);
      const tick = performance.now();
      const [status, ordersQ, notificationsQ, compensate, reconcile] = await Promise.all([
        statusCounts(db),
        queueCounts(queues.orders),
        queueCounts(queues.notifications),
        Job.fromId(queues.maintenance, compensateId).then((j) => (j ? j.getState() : 'missing')),
        Job.fromId(queues.maintenance, reconcileId).then((j) => (j ? j.getState() : 'missing')),
      ]);
      const t = seconds(t0);
      const failedLeft = (status.PRICING_FAILED ?? 0) + (status.DISPATCH_FAILED ?? 0);
      const moved = ORDERS - failedLeft - seeded.byKind.orphan; // the failed ones moved so far
      samples.push({ t: +t.toFixed(2), status, ordersWait: ordersQ.wait, notificationsWait: notificationsQ.wait, compensate, reconcile });
      const force = t - lastForced >= 2;
      if (force) lastForced = t;
      progress(
        `  [${fmt(t, 1)} s] failed left ${fmt(failedLeft)} (re-driven or escalated ${fmt(moved)}, ${fmt(moved / Math.max(t, 0.001))}/s) | ` +
          `CREATED ${fmt(status.CREATED ?? 0)} PRICED ${fmt(status.PRICED ?? 0)} CANCELLED ${fmt(status.CANCELLED ?? 0)} | ` +
          `orders q wait ${fmt(ordersQ.wait)} | notif q wait ${fmt(notificationsQ.wait)} | compensate ${compensate}, reconcile ${reconcile}`,
        force,
      );
      // The counts first (cheap); the exact check once they say it can pass.
      if (
        failedLeft === 0 &&
        (status.CREATED ?? 0) === expectedCounts.CREATED &&
        ordersQ.wait >= expectedCounts.CREATED &&
        notificationsQ.wait >= expectedCounts.CANCELLED
      ) {
        exactChecks += 1;
        check = await checkPart1(db, redis, queues, seeded);
        if (check.ok) {
          doneAt = performance.now(); // conservative: when the check that proved it finished
          break;
        }
      }
      if (compensate === 'failed' && reconcile === 'failed') break;
      const wait = 250 - (performance.now() - tick);
      if (wait > 0) await sleep(wait);
    }
    const cpuEnd = cpuSnapshot(cpuPids);
    const totalS = doneAt === null ? null : seconds(t0, doneAt);
    if (doneAt === null) {
      log(`  NOT every order moved within ${PART1_BOUND_S} s`);
      check = await checkPart1(db, redis, queues, seeded);
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
    // One INSERT INTO order_events per batch and status: its rows share CURRENT_TIMESTAMP(3), so the
    // distinct timestamps are the batches, and their spacing is the time per batch.
    const batchRows = (await db('order_events')
      .select('created_at')
      .count({ n: '*' })
      .where('actor', 'like', 'scheduler:compensate%')
      .groupBy('created_at')
      .orderBy('created_at')) as { created_at: Date; n: number | string }[];
    const batchGapsMs = batchRows.slice(1).map((row, i) => new Date(row.created_at).getTime() - new Date(batchRows[i]!.created_at).getTime());
    const batches = { count: batchRows.length, ordersPerBatch: stats(batchRows.map((r) => Number(r.n))), gapMs: stats(batchGapsMs) };
    const samplesOfJobs: Record<string, unknown>[] = [];
    for (const kind of ['pricing', 'dispatch', 'orphan', 'pricing-escalate'] as const) {
      const order = seeded.orders.find((o) => o.kind === kind);
      if (!order) continue;
      const row = (await db('orders').select('status', 'attempts', 'zone_id').where({ id: order.id }).first()) as { status: string; attempts: number; zone_id: string };
      let jobId: string;
      let job: Job | undefined;
      if (row.status === 'CREATED') {
        jobId = priceJobId(order.id, Number(row.attempts));
        job = await Job.fromId(queues.orders, jobId);
      } else if (row.status === 'CANCELLED') {
        jobId = notificationJobId(order.id, 'customer.cancelled');
        job = await Job.fromId(queues.notifications, jobId);
      } else {
        const waiting = await redis.lrange(queues.orders.keys.wait!, 0, -1);
        jobId = waiting.find((id) => id.startsWith(`dispatch-${row.zone_id}-`)) ?? `dispatch-${row.zone_id}-?`;
        job = await Job.fromId(queues.orders, jobId);
      }
      samplesOfJobs.push({
        kind,
        orderId: order.id,
        was: `${order.status} attempts ${order.attempts}`,
        now: `${row.status} attempts ${row.attempts}`,
        jobId,
        job: job ? { name: job.name, data: job.data, state: await job.getState() } : null,
      });
    }
    const cpu = cpuWindow(cpuStart, cpuEnd);
    const ordersPerSec = totalS === null ? null : ORDERS / totalS;

    log(`\n  results (part 1):`);
    log(
      `    MySQL after: ${Object.entries(finalStatus).map(([s, n]) => `${s} ${fmt(n)}`).join(', ')} ` +
        `(expected CREATED ${fmt(expectedCounts.CREATED)}, PRICED ${fmt(expectedCounts.PRICED)}, CANCELLED ${fmt(expectedCounts.CANCELLED)})`,
    );
    log(`    order_events by the compensation: ${events.map((e) => `${e.from_status} -> ${e.to_status} ${fmt(Number(e.n))}`).join(', ')}`);
    log(
      `    Redis after: orders queue ${fmt(finalQueues.orders.wait)} waiting (paused), notifications queue ${fmt(finalQueues.notifications.wait)} waiting; ` +
        `exact check: ${check?.ok ? 'every order in its next state with its job waiting' : `FAILED ${JSON.stringify(check)}`}` +
        (check && check.strayPriceJobs ? `; ${fmt(check.strayPriceJobs)} price jobs of orders not CREATED` : ''),
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
        baselines.push(await baseline(db, redisServer.url, config, policy, { clientId: client.id, merchants, concurrency, seed: 100 + i }));
      }
    }

    return {
      settings: {
        orders: ORDERS,
        mix: MIX,
        budgets: policy.budget,
        batchSize: config.maintenanceBatchSize,
        createdAfterMs: config.reconcileCreatedAfterMs,
        workerWatchdogMs: config.workerWatchdogMs,
        jobLockMs: config.jobLockMs,
      },
      seed: { seconds: seeded.seconds, rowsPerSec: seeded.rowsPerSec, byKind: seeded.byKind },
      expected: expectedCounts,
      way: 'worker process (workers/orders.ts) running one orders.compensate and one orders.reconcile job from the maintenance queue; orders and dispatch queues paused',
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
      jobSamples: samplesOfJobs,
      cpu,
      worker: warningsOf(worker),
      samples,
      baselines,
    };
  } finally {
    await stopProcesses(['worker']).catch(() => undefined);
    await Promise.all(Object.values(queues).map((q) => q.close())).catch(() => undefined);
    redis.disconnect();
    await db.destroy();
    await redisServer.stop();
  }
}
