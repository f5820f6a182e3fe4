import { once } from 'node:events';
/**
 * Phase 1, the warm-up: Courier's own warmUpCacheJob (jobs/warm-up-cache.ts) called as the
 * maintenance worker calls it, timed from outside; a sample of what it cached checked against
 * readOrder, and finished orders left out. Target: 100,000 orders in at most 5 s.
 */
import { deepStrictEqual } from 'node:assert';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { warmUpCacheJob } from '../../jobs/warm-up-cache.ts';
import { OrderCache } from '../../shared/cache/order-cache.ts';
import type { Config } from '../../shared/config.ts';
import { createDb, type Db } from '../../shared/db.ts';
import { createProducerRedis } from '../../shared/redis.ts';
import { createMaintenanceMetrics } from '../../shared/metrics/maintenance-metrics.ts';
import { createRegistry } from '../../shared/metrics/registry.ts';
import { readOrder } from '../../shared/orders/read-order.ts';
import { fmt, log } from '../lib/log.ts';
import { prng } from '../lib/prng.ts';
import { pidsNamed, readProcCpuMs, sumCpuMs } from '../lib/proc-stats.ts';
import { ORDER_COUNT, WARMUP_PAGE, TARGET } from './settings.ts';

// Phase 1: the warm-up (jobs/warm-up-cache.ts, as the maintenance worker runs it)

export interface WarmupFigures {
  readonly via: string;
  /** Active orders loaded, and of those written (the others were cached already). */
  readonly orders: number;
  readonly written: number;
  readonly merchants: number;
  readonly riders: number;
  readonly pageSize: number;
  /** Wall time of the call, and the job's own figure. */
  readonly seconds: number;
  readonly jobMs: number;
  readonly ordersPerS: number;
  /** CPU used during it, in ms: this process (the job: SELECT results, toOrderView, JSON, the pipelines), Redis, MariaDB. */
  readonly cpuMs: { bench: number; redis: number | null; mariadb: number | null };
  readonly l2BytesPerOrder: number | null;
  readonly sampleChecked: number;
  readonly sampleMismatches: number;
  /** Finished orders sampled, and how many of them were cached (the warm-up skips them: 0 expected). */
  readonly finishedChecked: number;
  readonly finishedCached: number;
}

export async function warmUp(
  ctx: { db: Db; config: Config; cache: OrderCache; redis: Redis; redisPid: number | null },
  activeIds: readonly string[],
  finishedIds: readonly string[],
): Promise<WarmupFigures> {
  const { db, config, cache, redis, redisPid } = ctx;
  log(
    `\n== 1. warm-up: warmUpCacheJob (jobs/warm-up-cache.ts) over ${fmt(activeIds.length + finishedIds.length)} orders, ` +
      `${fmt(WARMUP_PAGE)} a page: loads the ${fmt(activeIds.length)} active ones (and the merchant)`,
  );
  // Its own connections, as the maintenance worker gives it (workers/maintenance-pipeline.ts).
  const jobDb = createDb({ ...config, dbPoolMax: Math.min(config.dbPoolMax, 4) });
  const jobRedis = createProducerRedis(config);
  let outcome: Awaited<ReturnType<typeof warmUpCacheJob>>;
  const cpu0 = { bench: process.cpuUsage(), redis: redisPid === null ? null : readProcCpuMs(redisPid), mariadb: sumCpuMs(pidsNamed(['mariadbd', 'mysqld'])) };
  const t0 = performance.now();
  let seconds: number;
  try {
    await jobDb.raw('SELECT 1');
    // A producer connection refuses commands until it is connected (no offline queue).
    if (jobRedis.status !== 'ready') await once(jobRedis, 'ready');
    await jobRedis.ping();
    outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: jobDb, redis: jobRedis, config, logger: pino({ level: 'silent' }), metrics: createMaintenanceMetrics(createRegistry()), pageSize: WARMUP_PAGE },
    );
    seconds = (performance.now() - t0) / 1000;
  } finally {
    jobRedis.disconnect();
    await jobDb.destroy();
  }
  const benchCpu = process.cpuUsage(cpu0.bench);
  const redisNow = redisPid === null ? null : readProcCpuMs(redisPid);
  const mariadbNow = sumCpuMs(pidsNamed(['mariadbd', 'mysqld']));
  const cpuMs = {
    bench: (benchCpu.user + benchCpu.system) / 1000,
    redis: redisNow === null || cpu0.redis === null ? null : redisNow - cpu0.redis,
    mariadb: mariadbNow === null || cpu0.mariadb === null ? null : mariadbNow - cpu0.mariadb,
  };
  const orders = outcome.orders;
  log(
    `  ${fmt(orders)} orders in ${fmt(seconds, 2)} s (the job's own figure: ${fmt(outcome.ms)} ms): ${fmt(orders / seconds)} orders/s; ` +
      `${fmt(outcome.ordersWritten)} written; ${fmt(outcome.merchants)} merchant(s), ${fmt(outcome.riders)} riders`,
  );
  const perOrder = (ms: number | null) => (ms === null ? 'n/a' : `${fmt(ms / 1000, 2)} s (${fmt((ms * 1000) / Math.max(1, orders))} µs/order)`);
  log(`  CPU during it: this process (the job) ${perOrder(cpuMs.bench)}, redis-server ${perOrder(cpuMs.redis)}, mariadbd ${perOrder(cpuMs.mariadb)}`);

  // What an order costs in Redis (MEMORY USAGE of a sample).
  const random = prng(7);
  const sample = Array.from({ length: 200 }, () => activeIds[Math.floor(random() * activeIds.length)]!);
  let bytes = 0;
  let measured = 0;
  for (const id of sample) {
    const usage = (await redis.call('MEMORY', 'USAGE', cache.key(id))) as number | null;
    if (typeof usage === 'number') {
      bytes += usage;
      measured += 1;
    }
  }
  const l2BytesPerOrder = measured ? bytes / measured : null;
  // Checks: the cached orders are what readOrder answers; finished ones were left out.
  let mismatches = 0;
  const checked = sample.slice(0, 50);
  for (const id of checked) {
    const [cached, fresh] = await Promise.all([cache.get(id), readOrder(db, id)]);
    try {
      if (cached.kind !== 'hit') throw new Error(`not cached (${cached.kind})`);
      deepStrictEqual(cached.record, JSON.parse(JSON.stringify(fresh)));
    } catch (error) {
      mismatches += 1;
      if (mismatches <= 3) log(`  MISMATCH for order ${id}: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`);
    }
  }
  const finishedChecked = Math.min(50, finishedIds.length);
  let finishedCached = 0;
  for (const id of finishedIds.slice(0, finishedChecked)) if ((await cache.get(id)).kind !== 'miss') finishedCached += 1;
  log(
    `  L2 size: about ${fmt(l2BytesPerOrder)} bytes per order (MEMORY USAGE of ${measured} keys), ~${fmt(((l2BytesPerOrder ?? 0) * orders) / 1e6, 1)} MB for all; ` +
      `${checked.length} sampled active orders ${mismatches ? `checked: ${mismatches} MISMATCHED readOrder` : 'equal readOrder'}; ` +
      `${finishedCached} of ${finishedChecked} sampled finished orders cached (0 expected)`,
  );
  const verdict = seconds <= TARGET.maxWarmupS && orders === ORDER_COUNT ? 'PASS' : 'FAIL';
  log(`  ${verdict}: warm-up of ${fmt(orders)} orders in ${fmt(seconds, 2)} s (target: ${fmt(ORDER_COUNT)} in at most ${TARGET.maxWarmupS} s)`);
  return {
    via: 'warmUpCacheJob of jobs/warm-up-cache.ts, called as workers/maintenance-pipeline.ts does (its own pool of min(DB_POOL_MAX, 4) and a producer Redis connection)',
    orders,
    written: outcome.ordersWritten,
    merchants: outcome.merchants,
    riders: outcome.riders,
    pageSize: WARMUP_PAGE,
    seconds,
    jobMs: outcome.ms,
    ordersPerS: orders / seconds,
    cpuMs,
    l2BytesPerOrder,
    sampleChecked: checked.length,
    sampleMismatches: mismatches,
    finishedChecked,
    finishedCached,
  };
}

// ---------------------------------------------------------------------------------------------
