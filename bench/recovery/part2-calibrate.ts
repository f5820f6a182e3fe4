/** Part 2's calibration: the fleet's capacity end to end, measured, and the load's rate from it. */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Db } from '../../shared/db.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { newLoadCounters, runOrderLoad } from '../lib/order-load.ts';
import { backlogOf, queueCounts } from '../lib/queue-counts.ts';
import { openOf } from './flush-tracker.ts';
import { mysqlNow, pendingNotifications, seconds, statusCounts } from './helpers.ts';
import { fleetState } from './processes.ts';
import { CALIBRATE_BOUND_S, CALIBRATE_ORDERS, CALIBRATE_RATE, FLUSH_RATE_SETTING } from './settings.ts';

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
