/** Part 1's baseline: the same re-drive, one order at a time. */
import { performance } from 'node:perf_hooks';
import { JobProducer } from '../../jobs/producer.ts';
import type { Config } from '../../shared/config.ts';
import { createDb, type Db } from '../../shared/db.ts';
import { createOrderWriter } from '../../shared/orders/order-writer.ts';
import { budgetSpent, type RetryPolicy } from '../../shared/orders/retry-schedule.ts';
import { RETRY_STATE } from '../../shared/orders/state-machine.ts';
import { transitionOrder } from '../../shared/orders/transition-orders.ts';
import { priceBatchJobId } from '../../shared/queues/job-ids.ts';
import { createProducerRedis } from '../../shared/redis.ts';
import type { BenchMerchant } from '../lib/bench-zones.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { seconds, statusCounts, eachLimited } from './helpers.ts';
import { seedOrders, type SeededOrder } from './seed.ts';
import { ORDERS, BASELINE_ORDERS } from './settings.ts';

/**
 * The baseline: the same re-drive, one order at a time, on a new sample of the same mix, in this
 * process. A failed order is one write through the routine (transitionOrder on a writer from
 * createOrderWriter: lock, stale mark, guarded UPDATE + order_events + the ledger row an
 * escalation owes, reload, publish, the owed notification enqueued as a notify.batch of one
 * through the producer), then one job of its own through the producer: an orders.price batch of
 * one order (its id written on the row by the same UPDATE) or its zone's dispatch.zone run. An
 * orphan has the batch its row names looked up (a row from before batches names none); if that is
 * not live, it is given a price batch of its own (row updated, then one orders.price add).
 */
export async function baseline(
  db: Db,
  config: Config,
  policy: RetryPolicy,
  opts: { clientId: string; merchants: readonly BenchMerchant[]; concurrency: number; seed: number },
): Promise<Record<string, unknown>> {
  const label = `baseline c=${opts.concurrency}`;
  log(`\n== part 1 baseline: ${fmt(BASELINE_ORDERS)} orders of the same mix re-driven one order at a time, ${opts.concurrency} in flight (in this process)`);
  const seeded = await seedOrders(db, { count: BASELINE_ORDERS, clientId: opts.clientId, merchants: opts.merchants, policy, label, seed: opts.seed });
  const redis = createProducerRedis(config);
  redis.on('error', () => undefined);
  // A producer connection refuses commands until it is connected (no offline queue).
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const producer = new JobProducer(redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs });
  const pool = createDb({ ...config, dbPoolMax: Math.max(4, Math.min(opts.concurrency, 10)) });
  const writer = createOrderWriter(pool, redis, config, {
    enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
  });
  const counts = { notMoved: 0, orphansLive: 0, jobsAdded: 0 };

  /** One order: its write, then its job. */
  const redriveOne = async (order: SeededOrder) => {
    if (order.status === 'CREATED') {
      const [look] = order.priceJobId === null ? ['missing'] : await producer.lookUp('orders', [order.priceJobId]);
      if (look === 'live') {
        counts.orphansLive += 1;
        return;
      }
      const jobId = priceBatchJobId([order.id], order.attempts);
      await pool('orders').where({ id: order.id, status: 'CREATED' }).update({ price_job_id: jobId });
      await producer.add('orders.price', { orderIds: [order.id], attempt: order.attempts });
      counts.jobsAdded += 1;
      return;
    }
    const status = order.status;
    const escalate = budgetSpent(policy, status, order.attempts);
    const to = escalate ? ('CANCELLED' as const) : RETRY_STATE[status];
    const result = await transitionOrder(
      writer,
      {
        orderId: order.id,
        to,
        from: [status],
        reason: escalate ? `escalated: ${order.attempts} re-drives of ${status} spent` : `re-drive ${order.attempts + 1} of ${policy.budget[status]}`,
        patch: (current) =>
          escalate
            ? { next_attempt_at: null }
            : { attempts: current.attempts + 1, next_attempt_at: null, ...(to === 'CREATED' ? { price_job_id: priceBatchJobId([order.id], current.attempts + 1) } : {}) },
      },
      { actor: 'bench:baseline', waitMs: config.lockWaitMs },
    );
    if (result.kind !== 'done') {
      counts.notMoved += 1;
    } else if (to === 'CREATED') {
      await producer.add('orders.price', { orderIds: [order.id], attempt: result.change.patch.attempts ?? order.attempts + 1 });
      counts.jobsAdded += 1;
    } else if (to === 'PRICED') {
      await producer.add('dispatch.zone', { zoneId: order.zoneId, window: Date.now() });
      counts.jobsAdded += 1;
    }
    // CANCELLED: the routine enqueued its notification (enqueueNotifications above).
  };

  let done = 0;
  const t0 = performance.now();
  let lastForced = 0;
  try {
    await eachLimited(seeded.orders, opts.concurrency, async (order) => {
      await redriveOne(order);
      done += 1;
      const elapsed = seconds(t0);
      const force = elapsed - lastForced >= 3;
      if (force) lastForced = elapsed;
      progress(`  [${label}] ${fmt(done)} / ${fmt(BASELINE_ORDERS)} orders (${fmt(done / Math.max(elapsed, 0.001))}/s)`, force);
    });
    const s = seconds(t0);
    const failedIds = seeded.orders.filter((o) => o.status !== 'CREATED').map((o) => o.id);
    const left = await statusCounts(db, (q) => void q.whereIn('id', failedIds).whereIn('status', ['PRICING_FAILED', 'DISPATCH_FAILED']));
    const stillFailed = (left.PRICING_FAILED ?? 0) + (left.DISPATCH_FAILED ?? 0);
    const rate = BASELINE_ORDERS / s;
    log(
      `  ${label}: ${fmt(BASELINE_ORDERS)} orders in ${fmt(s, 2)} s = ${fmt(rate)} orders/s; ${fmt(ORDERS)} would take ${fmt(ORDERS / rate, 1)} s` +
        `; ${fmt(counts.jobsAdded)} price/dispatch jobs added one at a time; ${fmt(stillFailed)} left in a failed state, ${fmt(counts.notMoved)} not moved`,
    );
    return {
      concurrency: opts.concurrency,
      orders: BASELINE_ORDERS,
      byKind: seeded.byKind,
      seconds: s,
      ordersPerSec: rate,
      extrapolatedSeconds: ORDERS / rate,
      stillFailed,
      ...counts,
    };
  } finally {
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await pool.destroy();
  }
}
