/**
 * What each step achieved, read from MySQL once everything has drained (so an order accepted at a
 * step's last second is measured too): orders dispatched during the step, 202 -> DISPATCHED of the
 * orders accepted in it (one never dispatched counts as slower than any), CPU and round trips per
 * dispatched order, and whether the step was sustainable.
 */
import type { Db } from '../../shared/db.ts';
import { perUnitUs } from '../lib/cpu.ts';
import { summarize, type Summary } from '../lib/stats.ts';
import { roundTripsPerOrder, type RoundTripsPerOrder } from './round-trips.ts';
import type { StepRecord } from './steps.ts';
import { TARGETS } from './settings.ts';

export interface StepFigures {
  readonly rate: number;
  readonly acceptedPerSec: number;
  readonly dispatched: number;
  readonly dispatchedPerSec: number;
  /** 202 -> DISPATCHED of the step's orders, ms (MySQL timestamps). */
  readonly latencyMs: Summary;
  readonly notDispatched: number;
  readonly cpuUsPerOrder: Record<string, number | null>;
  /** Every process we know of (fleet, MariaDB, Redis, the bench), per dispatched order. */
  readonly cpuMsPerOrder: number;
  readonly machineCpuMsPerOrder: number | null;
  readonly roundTrips: RoundTripsPerOrder;
  readonly redisGrowthBytes: number;
  readonly sustainable: boolean;
}

async function one<T>(db: Db, sql: string, bindings: readonly unknown[]): Promise<T[]> {
  return ((await db.raw(sql, [...bindings] as never)) as [T[]])[0];
}

export async function stepFigures(db: Db, step: StepRecord): Promise<StepFigures> {
  const windowS = step.windowS > 0 ? step.windowS : 1;
  const [{ n }] = (await one<{ n: number | string }>(
    db,
    "SELECT COUNT(*) AS n FROM order_events WHERE to_status = 'DISPATCHED' AND created_at >= ? AND created_at < ?",
    [step.mysqlFrom, step.mysqlTo],
  )) as [{ n: number | string }];
  const dispatched = Number(n);
  const rows = await one<{ us: number | string | null }>(
    db,
    `SELECT TIMESTAMPDIFF(MICROSECOND, o.created_at, MIN(e.created_at)) AS us
       FROM orders o LEFT JOIN order_events e ON e.order_id = o.id AND e.to_status = 'DISPATCHED'
      WHERE o.created_at >= ? AND o.created_at < ? GROUP BY o.id, o.created_at`,
    [step.mysqlFrom, step.mysqlTo],
  );
  const latencies = rows.map((r) => (r.us === null ? Number.POSITIVE_INFINITY : Number(r.us) / 1000));
  const latencyMs = summarize(latencies);
  const perOrder = dispatched > 0 ? dispatched : Number.NaN;
  return {
    rate: step.rate,
    acceptedPerSec: step.accepted / windowS,
    dispatched,
    dispatchedPerSec: dispatched / windowS,
    latencyMs,
    notDispatched: latencies.filter((v) => v === Number.POSITIVE_INFINITY).length,
    cpuUsPerOrder: perUnitUs(step.cpu, dispatched),
    cpuMsPerOrder: step.cpu.ourMs / perOrder,
    machineCpuMsPerOrder: step.cpu.machineBusyMs === null ? null : step.cpu.machineBusyMs / perOrder,
    roundTrips: roundTripsPerOrder(step.roundTripsFrom, step.roundTripsTo, dispatched),
    redisGrowthBytes: step.redisTo - step.redisFrom,
    sustainable: step.backlog.flat && latencyMs.p99 <= TARGETS.maxP99Ms,
  };
}

/** The highest step that was sustainable (null when none was). */
export function sustainableStep(figures: readonly StepFigures[]): StepFigures | null {
  return figures.filter((f) => f.sustainable).sort((a, b) => b.rate - a.rate)[0] ?? null;
}
