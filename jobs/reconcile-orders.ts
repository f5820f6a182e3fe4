import type { Queue } from 'bullmq';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { ChangeOrder } from '../shared/orders/order-writer.ts';
import { nextAttemptAt, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { enqueueNotificationBatch } from '../shared/queues/notification-producer.ts';
import { enqueueDispatchRuns, enqueuePriceJobs } from '../shared/queues/order-producer.ts';
import { notificationJobId, priceJobId, type JobPayloads, type NotificationKind } from '../shared/queues/payloads.ts';
import type { Redis } from '../shared/redis.ts';
import { withDeadline } from '../shared/with-deadline.ts';

export interface ReconcileDeps {
  readonly db: Db;
  /** The connection the queues use: jobs are looked up over it in one pipelined round trip per page. */
  readonly redis: Redis;
  readonly ordersQueue: Queue;
  readonly dispatchQueue: Queue;
  readonly notificationsQueue: Queue;
  /** The order writer (an order whose price job gave up is recorded PRICING_FAILED through it). */
  readonly change: ChangeOrder;
  readonly retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>;
  /** A CREATED order this old (since its last change) without a live job is enqueued again, in ms. */
  readonly createdAfterMs: number;
  /** A PRICED order waiting this long gets its zone's dispatch run booked again, in ms. */
  readonly stuckAfterMs: number;
  /** A PENDING notification untouched this long without a live job is enqueued again, in ms. */
  readonly notifyAfterMs: number;
  /** Provider calls after which a PENDING notification is left to an operator. */
  readonly notifyAttemptBudget: number;
  /** Rows read, and jobs looked up in Redis, per round trip. */
  readonly batchSize: number;
  readonly redisTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, 'reconcileItems' | 'maintenanceSeconds'>;
  /** Count and report only: enqueue nothing, change nothing. */
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** Told after every page. */
  readonly onProgress?: (progress: ReconcileOutcome) => void;
}

export interface ReconcileOutcome {
  /** CREATED orders past the grace period: how many were looked at, had no job (enqueued), had a live one, had a finished one (recorded PRICING_FAILED). */
  readonly created: { checked: number; enqueued: number; live: number; finished: number };
  /** PRICED orders waiting past the timeout, and the zones whose dispatch run was booked again. */
  readonly priced: { stuck: number; zones: number };
  /** PENDING notifications past the timeout: looked at, enqueued again (no job, or a finished one), live, left to an operator (budget spent). */
  readonly notifications: { checked: number; enqueued: number; live: number; givenUp: number };
  readonly dryRun: boolean;
  readonly ms: number;
}

type JobLook = 'missing' | 'live' | 'finished';

/**
 * The reconciler: MySQL is the source of truth and every row says what it is owed, so whatever
 * Redis lost (a FLUSHALL, a restart without persistence, an enqueue that failed while Redis was
 * down, a worker that died between commit and enqueue) is found here and put back:
 *
 * - CREATED orders past a few seconds whose price job is missing are enqueued again under the same
 *   job id (a live job is never doubled); one whose job finished (failed for good) while the order
 *   is still CREATED is recorded PRICING_FAILED, for compensation's backoff and budget.
 * - PRICED orders waiting past a timeout get their zone's dispatch run booked again.
 * - PENDING notifications (the ledger rows written with the change that owes them) past a timeout
 *   whose job is missing or finished are enqueued again; the ledger and the provider's idempotency
 *   key keep that from notifying anyone twice.
 */
export async function reconcileOrdersJob(payload: JobPayloads['orders.reconcile'], deps: ReconcileDeps): Promise<ReconcileOutcome> {
  const started = performance.now();
  const dryRun = deps.dryRun ?? false;
  const outcome = {
    created: { checked: 0, enqueued: 0, live: 0, finished: 0 },
    priced: { stuck: 0, zones: 0 },
    notifications: { checked: 0, enqueued: 0, live: 0, givenUp: 0 },
    dryRun,
    ms: 0,
  };
  const progress = () => deps.onProgress?.({ ...outcome, ms: Math.round(performance.now() - started) });
  const count = (kind: string, action: string, value: number) => {
    if (value > 0 && !dryRun) deps.metrics?.reconcileItems.inc({ kind, action }, value);
  };

  await reconcileCreated(deps, dryRun, (page) => {
    addUp(outcome.created, page);
    count('created', 'enqueued', page.enqueued);
    count('created', 'failed', page.finished);
    progress();
  });
  deps.signal?.throwIfAborted();

  const stuck = await reconcilePriced(deps, dryRun);
  outcome.priced = stuck;
  count('priced', 'dispatch', stuck.zones);
  progress();

  await reconcileNotifications(deps, dryRun, (page) => {
    addUp(outcome.notifications, page);
    count('notification', 'enqueued', page.enqueued);
    count('notification', 'given_up', page.givenUp);
    progress();
  });

  outcome.ms = Math.round(performance.now() - started);
  if (!dryRun) deps.metrics?.maintenanceSeconds.observe({ job: 'reconcile' }, outcome.ms / 1000);
  const putBack = outcome.created.enqueued + outcome.created.finished + outcome.priced.zones + outcome.notifications.enqueued;
  const log = putBack > 0 || outcome.notifications.givenUp > 0 ? deps.logger.info.bind(deps.logger) : deps.logger.debug.bind(deps.logger);
  log(
    { reason: payload.reason, ...outcome },
    `reconcile${dryRun ? ' (dry run)' : ''}: ${outcome.created.enqueued} CREATED orders enqueued again, ` +
      `${outcome.created.finished} recorded PRICING_FAILED, ${outcome.priced.zones} zones' dispatch booked for ${outcome.priced.stuck} PRICED orders, ` +
      `${outcome.notifications.enqueued} notifications enqueued again, ${outcome.notifications.givenUp} left to an operator`,
  );
  return outcome;
}

/** Adds a page's counts into the run's. */
function addUp<K extends string>(total: Record<K, number>, page: Record<K, number>): void {
  for (const key of Object.keys(page) as K[]) total[key] += page[key];
}

async function reconcileCreated(
  deps: ReconcileDeps,
  dryRun: boolean,
  onPage: (page: { checked: number; enqueued: number; live: number; finished: number }) => void,
): Promise<void> {
  let afterId = '0';
  for (;;) {
    deps.signal?.throwIfAborted();
    // (status, next_attempt_at) index: a CREATED order has no next attempt, so this walks the
    // index in id order.
    const rows = await deps.db('orders')
      .select('id', 'attempts')
      .where({ status: 'CREATED' })
      .whereNull('next_attempt_at')
      .where('id', '>', afterId)
      .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.createdAfterMs * 1000]))
      .orderBy('id')
      .limit(deps.batchSize);
    if (rows.length === 0) return;
    afterId = String(rows.at(-1)!.id);
    const orders = rows.map((row) => ({ orderId: String(row.id), attempts: Number(row.attempts) }));
    const looks = await lookUpJobs(
      deps.redis,
      deps.ordersQueue,
      orders.map((order) => priceJobId(order.orderId, order.attempts)),
      deps.redisTimeoutMs,
    );
    const missing = orders.filter((_, index) => looks[index] === 'missing');
    const finished = orders.filter((_, index) => looks[index] === 'finished');
    if (!dryRun) {
      await enqueuePriceJobs(deps.ordersQueue, missing, deps.redisTimeoutMs);
      for (const order of finished) {
        await deps.change({
          orderId: order.orderId,
          to: 'PRICING_FAILED',
          from: ['CREATED'],
          actor: 'scheduler:reconcile',
          reason: 'its price job finished but the order is still CREATED',
          patch: (current) => ({
            last_error: 'the price job gave up without recording why',
            next_attempt_at: nextAttemptAt(deps.retry, current.attempts),
          }),
        });
      }
    }
    onPage({ checked: orders.length, enqueued: missing.length, live: looks.filter((look) => look === 'live').length, finished: finished.length });
    if (rows.length < deps.batchSize) return;
  }
}

/**
 * PRICED orders past the timeout, by zone. A zone's dispatch run takes all its PRICED orders, so
 * one run per zone is what they are owed; a run already waiting makes this one a cheap no-op.
 */
async function reconcilePriced(deps: ReconcileDeps, dryRun: boolean): Promise<{ stuck: number; zones: number }> {
  const rows = (await deps.db('orders')
    .select('zone_id')
    .count({ n: '*' })
    .where({ status: 'PRICED' })
    .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.stuckAfterMs * 1000]))
    .groupBy('zone_id')) as unknown as { zone_id: string; n: number | string }[];
  const zones = rows.map((row) => String(row.zone_id));
  if (!dryRun) await enqueueDispatchRuns(deps.dispatchQueue, zones, deps.redisTimeoutMs);
  return { stuck: rows.reduce((sum, row) => sum + Number(row.n), 0), zones: zones.length };
}

async function reconcileNotifications(
  deps: ReconcileDeps,
  dryRun: boolean,
  onPage: (page: { checked: number; enqueued: number; live: number; givenUp: number }) => void,
): Promise<void> {
  // Keyset on the (status, updated_at) index: oldest first.
  let after: { updatedAt: Date; id: string } | undefined;
  for (;;) {
    deps.signal?.throwIfAborted();
    let query = deps.db('notifications')
      .select('id', 'order_id', 'kind', 'attempts', 'updated_at')
      .where({ status: 'PENDING' })
      .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.notifyAfterMs * 1000]));
    if (after) {
      const { updatedAt, id } = after;
      query = query.where((where) => where.where('updated_at', '>', updatedAt).orWhere((same) => same.where('updated_at', updatedAt).where('id', '>', id)));
    }
    const rows = await query.orderBy([{ column: 'updated_at' }, { column: 'id' }]).limit(deps.batchSize);
    if (rows.length === 0) return;
    const last = rows.at(-1)!;
    after = { updatedAt: last.updated_at as Date, id: String(last.id) };
    const entries = rows.map((row) => ({ orderId: String(row.order_id), kind: row.kind as NotificationKind, attempts: Number(row.attempts) }));
    const jobIds = entries.map((entry) => notificationJobId(entry.orderId, entry.kind));
    const looks = await lookUpJobs(deps.redis, deps.notificationsQueue, jobIds, deps.redisTimeoutMs);
    const owed = entries.map((entry, index) => ({ entry, jobId: jobIds[index]!, look: looks[index]! })).filter(({ look }) => look !== 'live');
    const givenUp = owed.filter(({ entry }) => entry.attempts >= deps.notifyAttemptBudget);
    const resend = owed.filter(({ entry }) => entry.attempts < deps.notifyAttemptBudget);
    if (!dryRun) {
      // A finished job holds its id: it goes, so the new one can be added under the same id.
      await withDeadline(
        Promise.all(resend.filter(({ look }) => look === 'finished').map(({ jobId }) => deps.notificationsQueue.remove(jobId))),
        deps.redisTimeoutMs,
      );
      await enqueueNotificationBatch(
        deps.notificationsQueue,
        resend.map(({ entry }) => ({ orderId: entry.orderId, kind: entry.kind })),
        deps.redisTimeoutMs,
      );
      for (const { entry } of givenUp) {
        deps.logger.warn({ orderId: entry.orderId, kind: entry.kind, attempts: entry.attempts }, 'notification left PENDING: its attempt budget is spent');
      }
    }
    onPage({ checked: rows.length, enqueued: resend.length, live: looks.filter((look) => look === 'live').length, givenUp: givenUp.length });
    if (rows.length < deps.batchSize) return;
  }
}

/**
 * Whether each job exists and is still to run (waiting, delayed, active) or finished (completed or
 * failed for good), from its hash alone: every job hash has `timestamp`, a finished one
 * `finishedOn`. One pipelined HMGET per job, no job data parsed (a run may look at thousands).
 */
async function lookUpJobs(redis: Redis, queue: Queue, jobIds: readonly string[], timeoutMs: number): Promise<JobLook[]> {
  if (jobIds.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const jobId of jobIds) pipeline.hmget(queue.toKey(jobId), 'timestamp', 'finishedOn');
  const results = (await withDeadline(pipeline.exec(), timeoutMs * 5)) ?? [];
  return results.map(([error, fields]): JobLook => {
    if (error) throw error;
    const [timestamp, finishedOn] = fields as [string | null, string | null];
    if (timestamp === null) return 'missing';
    return finishedOn === null ? 'live' : 'finished';
  });
}
