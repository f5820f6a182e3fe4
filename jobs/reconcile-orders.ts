import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { MaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import type { NotificationKind, OwedNotification } from '../shared/notifications/kinds.ts';
import type { LockedOrder } from '../shared/orders/apply-changes.ts';
import { orderTrail, requestIdOf } from '../shared/orders/request-ids.ts';
import { nextAttemptAt, type RetryPolicy } from '../shared/orders/retry-schedule.ts';
import { transitionOrders } from '../shared/orders/transition-orders.ts';
import type { OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { batchNameOf, notificationBatchJobId, priceBatchJobId } from '../shared/queues/job-ids.ts';
import type { JobLook, JobProducer } from './producer.ts';
import type { JobPayloads } from './payloads.ts';

export interface ReconcileDeps {
  readonly db: Db;
  /** Looks jobs up (one pipelined round trip per page) and puts lost ones back. */
  readonly producer: Pick<JobProducer, 'lookUp' | 'putBack'>;
  /** The write routine (an order whose price job gave up is recorded PRICING_FAILED through it). */
  readonly writer: OrderWriterDeps;
  /** Books a dispatch run now for each zone. */
  readonly dispatchNow: (zoneIds: readonly string[]) => Promise<void>;
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
  readonly logger: Logger;
  readonly metrics?: Pick<MaintenanceMetrics, 'reconcileItems' | 'maintenanceSeconds'>;
  /** Count and report only: enqueue nothing, change nothing. */
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** Told after every step. */
  readonly onProgress?: (progress: ReconcileOutcome) => void;
  readonly jobId?: string;
}

export interface ReconcileOutcome {
  /** CREATED orders past the grace period: looked at, put back on the queue (their job was lost), carried by a live job, whose job finished (recorded PRICING_FAILED). */
  readonly created: { checked: number; enqueued: number; live: number; finished: number };
  /** PRICED orders waiting past the timeout, and the zones whose dispatch run was booked again. */
  readonly priced: { stuck: number; zones: number };
  /** PENDING notifications past the timeout: looked at, enqueued again (no job, or a finished one), live, left to an operator (budget spent). */
  readonly notifications: { checked: number; enqueued: number; live: number; givenUp: number };
  readonly dryRun: boolean;
  readonly ms: number;
}

const ACTOR = 'scheduler:reconcile';

/**
 * The reconciler: MySQL is the source of truth and every row says what it is owed and which batch
 * job carries it, so whatever Redis lost (a FLUSHALL, a restart without persistence, an enqueue
 * that failed while Redis was down, a process that died between commit and enqueue) is found here
 * and put back, one job lookup per batch rather than per order:
 *
 * - CREATED orders past a few seconds: their price batch (orders.price_job_id) is looked up; a
 *   lost one is put back under the same id with the orders still CREATED (a live one is never
 *   doubled); one that finished (failed for good) while its orders are still CREATED gets them
 *   recorded PRICING_FAILED, for compensation's backoff and budget.
 * - PRICED orders waiting past a timeout get their zone's dispatch run booked again.
 * - PENDING notifications past a timeout whose batch (notifications.job_id) is missing or finished
 *   are enqueued again under that id; the ledger and the provider's idempotency key keep that from
 *   notifying anyone twice.
 *
 * Rows that name no job (written before batch jobs) get a batch of their own, whose id they then carry.
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

  // A step that throws (Redis or MySQL away mid-run) fails the job, but what the steps before it
  // put back is real: it is logged all the same, so an operator (and a test) sees it.
  let stoppedBy: unknown;
  try {
    await reconcileCreated(deps, dryRun, outcome.created);
    count('created', 'enqueued', outcome.created.enqueued);
    count('created', 'failed', outcome.created.finished);
    progress();
    deps.signal?.throwIfAborted();

    outcome.priced = await reconcilePriced(deps, dryRun);
    count('priced', 'dispatch', outcome.priced.zones);
    progress();
    deps.signal?.throwIfAborted();

    await reconcileNotifications(deps, dryRun, outcome.notifications);
    count('notification', 'enqueued', outcome.notifications.enqueued);
    count('notification', 'given_up', outcome.notifications.givenUp);
  } catch (error) {
    stoppedBy = error;
    throw error;
  } finally {
    outcome.ms = Math.round(performance.now() - started);
    if (stoppedBy === undefined) progress();
    if (!dryRun) deps.metrics?.maintenanceSeconds.observe({ job: 'reconcile' }, outcome.ms / 1000);
    logReconcileRun(deps.logger, payload.reason, outcome, stoppedBy);
  }
  return outcome;
}

function logReconcileRun(logger: Logger, reason: string, outcome: ReconcileOutcome, stoppedBy: unknown): void {
  const putBack = outcome.created.enqueued + outcome.created.finished + outcome.priced.zones + outcome.notifications.enqueued;
  const stopped = stoppedBy === undefined ? '' : ` (stopped early: ${stoppedBy instanceof Error ? stoppedBy.message : String(stoppedBy)})`;
  const fields = { reason, ...outcome, ...(stoppedBy === undefined ? {} : { stoppedEarly: true }) };
  const message =
    `reconcile${outcome.dryRun ? ' (dry run)' : ''}: ${outcome.created.enqueued} CREATED orders enqueued again, ` +
    `${outcome.created.finished} recorded PRICING_FAILED, ${outcome.priced.zones} zones' dispatch booked for ${outcome.priced.stuck} PRICED orders, ` +
    `${outcome.notifications.enqueued} notifications enqueued again, ${outcome.notifications.givenUp} left to an operator${stopped}`;
  if (stoppedBy !== undefined) logger.warn(fields, message);
  else if (putBack > 0 || outcome.notifications.givenUp > 0) logger.info(fields, message);
  else logger.debug(fields, message);
}

/** Rows past the grace period, grouped by the job that carries them (null: none named). */
type Groups<T> = Map<string | null, T[]>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function groupBy<T>(rows: readonly T[], key: (row: T) => string | null, into: Groups<T> = new Map()): Groups<T> {
  for (const row of rows) {
    const k = key(row);
    const group = into.get(k);
    if (group) group.push(row);
    else into.set(k, [row]);
  }
  return into;
}

/** Counts into `result` as it goes, so a run stopped half-way still reports what it put back. */
async function reconcileCreated(deps: ReconcileDeps, dryRun: boolean, result: Mutable<ReconcileOutcome['created']>): Promise<void> {
  // Every page first, then the lookups: a batch's orders may span pages, and it is put back whole.
  const groups: Groups<{ id: string; attempts: number }> = new Map();
  // Read with the rows, for the lines that name the orders put back or given up.
  const requestIds = new Map<string, string | null>();
  for (let afterId = '0'; ; ) {
    deps.signal?.throwIfAborted();
    // (status, next_attempt_at) index: a CREATED order has no next attempt, so this walks it in id order.
    const rows = await deps.db('orders')
      .select('id', 'attempts', 'price_job_id', 'request_id')
      .where({ status: 'CREATED' })
      .whereNull('next_attempt_at')
      .where('id', '>', afterId)
      .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.createdAfterMs * 1000]))
      .orderBy('id')
      .limit(deps.batchSize);
    result.checked += rows.length;
    for (const row of rows) requestIds.set(String(row.id), requestIdOf(row));
    groupBy(
      rows.map((row) => ({ id: String(row.id), attempts: Number(row.attempts), jobId: row.price_job_id === null ? null : String(row.price_job_id) })),
      (row) => row.jobId,
      groups as Groups<{ id: string; attempts: number; jobId: string | null }>,
    );
    if (rows.length < deps.batchSize) break;
    afterId = String(rows.at(-1)!.id);
  }
  const named = [...groups].filter((entry): entry is [string, { id: string; attempts: number }[]] => entry[0] !== null);
  for (let start = 0; start < named.length; start += deps.batchSize) {
    const page = named.slice(start, start + deps.batchSize);
    const looks = await deps.producer.lookUp('orders', page.map(([jobId]) => jobId));
    for (const [index, [jobId, orders]] of page.entries()) {
      const look = looks[index]!;
      const orderIds = orders.map((order) => order.id);
      if (look === 'live') result.live += orders.length;
      else if (look === 'missing') {
        if (!dryRun) {
          await deps.producer.putBack('orders.price', { orderIds, attempt: orders[0]!.attempts, batch: batchNameOf(jobId, 'price') });
          deps.logger.info({ priceJob: jobId, ...orderTrail(orderIds, requestIds) }, `reconciled price batch ${jobId}: lost; put back with its ${orderIds.length} CREATED orders`);
        }
        result.enqueued += orders.length;
      } else {
        if (!dryRun) {
          await recordGaveUp(deps, orderIds, jobId);
          deps.logger.info(
            { priceJob: jobId, ...orderTrail(orderIds, requestIds) },
            `reconciled price batch ${jobId}: finished with ${orderIds.length} orders still CREATED; recorded PRICING_FAILED`,
          );
        }
        result.finished += orders.length;
      }
    }
  }
  // Orders that name no price batch (written before there were batches): batches of their own,
  // per attempt and at most batchSize orders each (a payload's size is bounded).
  const unnamed = groupBy(groups.get(null) ?? [], (order) => String(order.attempts));
  for (const [attempt, orders] of unnamed) {
    for (let start = 0; start < orders.length; start += deps.batchSize) {
      const payload = { orderIds: orders.slice(start, start + deps.batchSize).map((order) => order.id), attempt: Number(attempt) };
      if (!dryRun) {
        const jobId = priceBatchJobId(payload.orderIds, payload.attempt);
        await deps.db('orders').whereIn('id', payload.orderIds).where({ status: 'CREATED' }).whereNull('price_job_id').update({ price_job_id: jobId });
        await deps.producer.putBack('orders.price', payload);
        deps.logger.info({ priceJob: jobId, ...orderTrail(payload.orderIds, requestIds) }, `reconciled ${payload.orderIds.length} CREATED orders that named no price batch: enqueued as ${jobId}`);
      }
      result.enqueued += payload.orderIds.length;
    }
  }
}

async function recordGaveUp(deps: ReconcileDeps, orderIds: readonly string[], jobId: string): Promise<void> {
  const reason = `its price job ${jobId} finished but the order is still CREATED`;
  await transitionOrders(
    deps.writer,
    orderIds.map((orderId) => ({
      orderId,
      to: 'PRICING_FAILED' as const,
      from: ['CREATED' as const],
      reason,
      patch: (current: LockedOrder) => ({ last_error: 'the price job gave up without recording why', next_attempt_at: nextAttemptAt(deps.retry, current.attempts) }),
    })),
    { actor: ACTOR, ...(deps.jobId ? { jobId: deps.jobId } : {}), waitMs: 0 },
  );
}

/**
 * PRICED orders past the timeout, by zone. A zone's dispatch run takes all its PRICED orders, so
 * one run per zone is what they are owed; a run already waiting makes this one a cheap no-op.
 */
async function reconcilePriced(deps: ReconcileDeps, dryRun: boolean): Promise<ReconcileOutcome['priced']> {
  const rows = (await deps
    .db('orders')
    .select('zone_id')
    .count({ n: '*' })
    .where({ status: 'PRICED' })
    .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.stuckAfterMs * 1000]))
    .groupBy('zone_id')) as unknown as { zone_id: string; n: number | string }[];
  const zones = rows.map((row) => String(row.zone_id));
  if (!dryRun) await deps.dispatchNow(zones);
  return { stuck: rows.reduce((sum, row) => sum + Number(row.n), 0), zones: zones.length };
}

interface PendingRow extends OwedNotification {
  /** The ledger row's own id. */
  readonly id: string;
  readonly attempts: number;
  readonly jobId: string | null;
}

/** Counts into `result` as it goes, so a run stopped half-way still reports what it put back. */
async function reconcileNotifications(deps: ReconcileDeps, dryRun: boolean, result: Mutable<ReconcileOutcome['notifications']>): Promise<void> {
  const groups: Groups<PendingRow> = new Map();
  // Keyset on the (status, updated_at) index: oldest first.
  let after: { updatedAt: Date; id: string } | undefined;
  for (;;) {
    deps.signal?.throwIfAborted();
    let query = deps
      .db('notifications')
      .select('id', 'order_id', 'kind', 'attempts', 'job_id', 'updated_at')
      .where({ status: 'PENDING' })
      .where('updated_at', '<', deps.db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [deps.notifyAfterMs * 1000]));
    if (after) {
      const { updatedAt, id } = after;
      query = query.where((where) => where.where('updated_at', '>', updatedAt).orWhere((same) => same.where('updated_at', updatedAt).where('id', '>', id)));
    }
    const rows = await query.orderBy([{ column: 'updated_at' }, { column: 'id' }]).limit(deps.batchSize);
    result.checked += rows.length;
    groupBy(
      rows.map((row) => ({
        id: String(row.id),
        orderId: String(row.order_id),
        kind: row.kind as NotificationKind,
        attempts: Number(row.attempts),
        jobId: row.job_id === null ? null : String(row.job_id),
      })),
      (row) => row.jobId,
      groups,
    );
    if (rows.length < deps.batchSize) break;
    const last = rows.at(-1)!;
    after = { updatedAt: last.updated_at as Date, id: String(last.id) };
  }

  const resend = async (rows: readonly PendingRow[], jobId: string | null) => {
    const owed = rows.filter((row) => row.attempts < deps.notifyAttemptBudget);
    const givenUp = rows.filter((row) => row.attempts >= deps.notifyAttemptBudget);
    result.givenUp += givenUp.length;
    if (dryRun) {
      result.enqueued += owed.length;
      return;
    }
    // One line per group, not per notification: every run finds them again until an operator acts.
    if (givenUp.length > 0) {
      deps.logger.warn(
        { notifyJob: jobId, notifications: givenUp.map(({ orderId, kind, attempts }) => ({ orderId, kind, attempts })) },
        `${givenUp.length} notifications left PENDING: their attempt budget is spent`,
      );
    }
    if (owed.length === 0) return;
    const notifications = owed.map(({ orderId, kind }) => ({ orderId, kind }));
    if (jobId === null) {
      // Exactly these rows come to name the batch (by their own ids).
      await deps
        .db('notifications')
        .whereIn(
          'id',
          owed.map((row) => row.id),
        )
        .where({ status: 'PENDING' })
        .whereNull('job_id')
        .update({ job_id: notificationBatchJobId(notifications) });
    }
    await deps.producer.putBack('notify.batch', { notifications, ...(jobId === null ? {} : { batch: batchNameOf(jobId, 'notify') }) });
    result.enqueued += owed.length;
  };
  const named = [...groups].filter((entry): entry is [string, PendingRow[]] => entry[0] !== null);
  for (let start = 0; start < named.length; start += deps.batchSize) {
    const page = named.slice(start, start + deps.batchSize);
    const looks: readonly JobLook[] = await deps.producer.lookUp('notifications', page.map(([jobId]) => jobId));
    for (const [index, [jobId, rows]] of page.entries()) {
      if (looks[index] === 'live') result.live += rows.length;
      else await resend(rows, jobId);
    }
  }
  const unnamed = groups.get(null) ?? [];
  for (let start = 0; start < unnamed.length; start += deps.batchSize) await resend(unnamed.slice(start, start + deps.batchSize), null);
}
