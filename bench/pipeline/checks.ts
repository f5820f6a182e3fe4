/**
 * Exactly once, checked from MySQL and the dev provider after everything drained: every 202 is a
 * row; every accepted order ended DISPATCHED or in a failed or escalated state; no order got two
 * riders (at most one DISPATCHED event each, a rider on each dispatched order, no rider ever over
 * its capacity in a sample); no notification went out twice (the provider delivers a key once and
 * counts repeats as duplicates: its deliveries must equal the SENT rows, and each dispatched order
 * has both its notifications SENT).
 */
import type { Db } from '../../shared/db.ts';
import type { LoadCounters } from '../lib/order-load.ts';
import type { Sample } from './sampler.ts';

export interface Check {
  readonly check: string;
  readonly found: string;
  readonly ok: boolean;
}

async function count(db: Db, sql: string): Promise<number> {
  return Number(((await db.raw(sql)) as [{ n: number | string }[]])[0][0]?.n ?? 0);
}

export async function exactlyOnceChecks(db: Db, counters: LoadCounters, samples: readonly Sample[], provider: Record<string, number> | null): Promise<Check[]> {
  const ids = new Set(((await db('orders').select('id')) as { id: string }[]).map((r) => String(r.id)));
  const missing = counters.ids.filter((id) => !ids.has(id)).length + counters.badBodies;
  const statusRows = (await db('orders').select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: number | string }[];
  const status = Object.fromEntries(statusRows.map((r) => [r.status, Number(r.n)]));
  const notThrough = (status.CREATED ?? 0) + (status.PRICED ?? 0);
  const twiceDispatched = await count(db, "SELECT COUNT(*) AS n FROM (SELECT order_id FROM order_events WHERE to_status = 'DISPATCHED' GROUP BY order_id HAVING COUNT(*) > 1) t");
  const withoutRider = await count(db, "SELECT COUNT(*) AS n FROM orders WHERE status IN ('DISPATCHED', 'PICKED_UP', 'DELIVERED') AND rider_id IS NULL");
  const overCapacity = Math.max(0, ...samples.map((s) => s.ridersOverCapacity));
  const sent = await count(db, "SELECT COUNT(*) AS n FROM notifications WHERE status = 'SENT'");
  const pending = await count(db, "SELECT COUNT(*) AS n FROM notifications WHERE status = 'PENDING'");
  const unnotified = await count(
    db,
    `SELECT COUNT(*) AS n FROM orders o WHERE o.status = 'DISPATCHED'
        AND (SELECT COUNT(*) FROM notifications n WHERE n.order_id = o.id AND n.status = 'SENT' AND n.kind IN ('customer.dispatched', 'merchant.dispatched')) < 2`,
  );
  const fmtStatus = Object.entries(status).map(([s, n]) => `${s} ${n}`).join(', ');
  return [
    { check: 'every 202 is a row in orders', found: `${counters.ids.length} answered 202, ${missing} missing`, ok: missing === 0 },
    { check: 'every accepted order ended DISPATCHED or failed/escalated', found: `${fmtStatus}; ${notThrough} still CREATED or PRICED`, ok: notThrough === 0 },
    { check: 'no order got two riders', found: `${twiceDispatched} orders with two DISPATCHED events, ${withoutRider} dispatched without a rider, at most ${overCapacity} riders over capacity in a sample`, ok: twiceDispatched === 0 && withoutRider === 0 && overCapacity === 0 },
    {
      check: 'no notification went out twice',
      found: provider
        ? `dev provider: ${provider.deliveries} delivered, ${provider.duplicates} repeats of a key (answered with the first message, not delivered again); ${sent} SENT rows, ${pending} PENDING; ${unnotified} dispatched orders without both notifications SENT`
        : 'the dev provider could not be read',
      ok: provider !== null && provider.deliveries === sent && pending === 0 && unnotified === 0,
    },
  ];
}
