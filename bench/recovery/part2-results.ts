/** Part 2's figures once the load drained: recovery times, end-to-end latency by what each order saw of the flush, no notification twice. */
import type { Db } from '../../shared/db.ts';
import { fmt, log } from '../lib/log.ts';
import type { QueueCounts } from '../lib/queue-counts.ts';
import { summarize } from '../lib/stats.ts';
import type { FlushTracker } from './flush-tracker.ts';
import { fmtSummary, seconds, statusCounts } from './helpers.ts';
import type { Flush } from './part2-flush.ts';

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
