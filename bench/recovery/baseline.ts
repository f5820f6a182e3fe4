
import { performance } from 'node:perf_hooks';
import { Job } from 'bullmq';
import type { Config } from '../../shared/config.ts';
import { createDb, type Db } from '../../shared/db.ts';
import { openLedgerEntriesIn } from '../../shared/notifications/notification-ledger.ts';
import { NOTIFICATION_JOB_OPTIONS } from '../../shared/notifications/retry-policy.ts';
import { createOrderWriter } from '../../shared/orders/order-writer.ts';
import { budgetSpent, type RetryPolicy } from '../../shared/orders/retry-schedule.ts';
import { RETRY_STATE } from '../../shared/orders/state-machine.ts';
import { createQueue } from '../../shared/queues/create-queue.ts';
import { dispatchJobId, notificationJobId, priceJobId } from '../../shared/queues/payloads.ts';
import { QUEUE_NAMES } from '../../shared/queues/queue-names.ts';
import { createProducerRedis } from '../../shared/redis.ts';
import type { BenchMerchant } from '../lib/bench-zones.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { seconds, statusCounts, eachLimited } from './helpers.ts';
import { seedOrders } from './seed.ts';
import { ORDERS, BASELINE_ORDERS } from './settings.ts';

/**
 * The baseline: the same re-drive, one order at a time through the single-order routine, on a new
 * sample of the same mix: a failed order goes through createOrderWriter().change() (lock, stale
 * mark, guarded UPDATE + order_events, reload, publish), then one queue.add of its job; an orphan
 * is looked up (Job.fromId) and added.
 */
export async function baseline(
  db: Db,
  redisUrl: string,
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
  const ordersQueue = createQueue(QUEUE_NAMES.orders, { connection: redis, prefix: config.queuePrefix });
  const dispatchQueue = createQueue(QUEUE_NAMES.dispatch, { connection: redis, prefix: config.queuePrefix });
  const notificationsQueue = createQueue(QUEUE_NAMES.notifications, { connection: redis, prefix: config.queuePrefix });
  const pool = createDb({ ...config, dbPoolMax: Math.max(4, Math.min(opts.concurrency, 10)) });
  const writer = createOrderWriter(pool, redis, config);
  let done = 0;
  let notMoved = 0;
  const t0 = performance.now();
  let lastForced = 0;
  try {
    await eachLimited(seeded.orders, opts.concurrency, async (order) => {
      if (order.status === 'CREATED') {
        const jobId = priceJobId(order.id, order.attempts);
        if (!(await Job.fromId(ordersQueue, jobId))) await ordersQueue.add('order.price', { orderId: order.id }, { jobId });
      } else {
        const status = order.status;
        const escalate = budgetSpent(policy, status, order.attempts);
        const to = escalate ? ('CANCELLED' as const) : RETRY_STATE[status];
        const result = await writer.change({
          orderId: order.id,
          to,
          from: [status],
          actor: 'bench:baseline',
          reason: escalate ? `escalated: ${order.attempts} re-drives of ${status} spent` : `re-drive ${order.attempts + 1} of ${policy.budget[status]}`,
          patch: escalate ? { next_attempt_at: null } : (current) => ({ attempts: current.attempts + 1, next_attempt_at: null }),
          ...(escalate ? { alsoDo: (trx) => openLedgerEntriesIn(trx, [{ orderId: order.id, kind: 'customer.cancelled' }]) } : {}),
        });
        if (result.kind !== 'done') {
          notMoved += 1;
        } else if (to === 'CREATED') {
          await ordersQueue.add('order.price', { orderId: order.id }, { jobId: priceJobId(order.id, result.order.attempts) });
        } else if (to === 'PRICED') {
          await dispatchQueue.add('dispatch.zone', { zoneId: order.zoneId }, { jobId: dispatchJobId(order.zoneId, Date.now()) });
        } else {
          const jobId = notificationJobId(order.id, 'customer.cancelled');
          await notificationsQueue.add('notify.send', { orderId: order.id, kind: 'customer.cancelled' }, { ...NOTIFICATION_JOB_OPTIONS, jobId });
        }
      }
      done += 1;
      const elapsed = seconds(t0);
      const force = elapsed - lastForced >= 3;
      if (force) lastForced = elapsed;
      progress(`  [${label}] ${fmt(done)} / ${fmt(BASELINE_ORDERS)} orders (${fmt(done / Math.max(elapsed, 0.001))}/s)`, force);
    });
    const s = seconds(t0);
    const left = await statusCounts(db, (q) => void q.whereIn('id', seeded.orders.filter((o) => o.status !== 'CREATED').map((o) => o.id)).whereIn('status', ['PRICING_FAILED', 'DISPATCH_FAILED']));
    const stillFailed = (left.PRICING_FAILED ?? 0) + (left.DISPATCH_FAILED ?? 0);
    const rate = BASELINE_ORDERS / s;
    log(
      `  ${label}: ${fmt(BASELINE_ORDERS)} orders in ${fmt(s, 2)} s = ${fmt(rate)} orders/s; ${fmt(ORDERS)} would take ${fmt(ORDERS / rate, 1)} s` +
        `; ${fmt(stillFailed)} left in a failed state, ${fmt(notMoved)} not moved`,
    );
    return { concurrency: opts.concurrency, orders: BASELINE_ORDERS, byKind: seeded.byKind, seconds: s, ordersPerSec: rate, extrapolatedSeconds: ORDERS / rate, stillFailed, notMoved };
  } finally {
    await Promise.all([ordersQueue.close(), dispatchQueue.close(), notificationsQueue.close()]).catch(() => undefined);
    redis.disconnect();
    await pool.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
