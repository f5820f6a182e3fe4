/**
 * The checks that end every scenario, from MySQL and the dev provider once its orders settled:
 * nothing accepted is lost (every 202 a row, every row through the pipeline, no row without a 202),
 * no effect twice (one DISPATCHED event and one rider per order, no rider over its capacity or
 * holding other than its orders, each notification delivered once and its ledger row SENT), and
 * every answer the one the contract gives (no hang, no code outside the scenario's).
 */
import type { Db } from '../../shared/db.ts';
import { count, rows, sqlId, statusesOf, OPEN_STATUSES } from './orders-state.ts';
import type { OrderTraffic } from './traffic/order-traffic.ts';
import { label, type Answer } from './traffic/post.ts';

export interface Check {
  readonly check: string;
  readonly found: string;
  readonly ok: boolean;
}

/** What the row of a scenario shows. */
export interface Figures {
  readonly accepted: number;
  readonly settled: number;
  readonly lost: number;
  readonly dupRiders: number;
  readonly dupNotifications: number;
  readonly statuses: Record<string, number>;
}

export interface CheckInput {
  readonly db: Db;
  readonly traffic: OrderTraffic;
  /** The scenario's orders have ids above this. */
  readonly above: string;
  readonly providerUrl: string;
  /** Non-202 answers a valid order may get in this scenario ("503 DB_UNAVAILABLE"); 429 always may. */
  readonly refusals: readonly string[];
  /** Set when a fleet process exited on its own. */
  readonly fleetFailure: string | null;
}

interface ProviderView {
  readonly stats: { deliveries: number; duplicates: number; failures: number; requests: number };
}

export async function providerView(providerUrl: string): Promise<ProviderView> {
  const response = await fetch(`${providerUrl}/control`, { signal: AbortSignal.timeout(5000) });
  return (await response.json()) as ProviderView;
}

/** (orderId, kind) pairs the provider delivered more than once, under any key (its newest 10,000 messages). */
async function deliveredTwice(providerUrl: string): Promise<{ pairs: number; listed: number }> {
  const response = await fetch(`${providerUrl}/v1/messages`, { signal: AbortSignal.timeout(10_000) });
  const { messages } = (await response.json()) as { messages: { orderId: string; kind: string }[] };
  const seen = new Map<string, number>();
  for (const m of messages) seen.set(`${m.orderId}:${m.kind}`, (seen.get(`${m.orderId}:${m.kind}`) ?? 0) + 1);
  return { pairs: [...seen.values()].filter((n) => n > 1).length, listed: messages.length };
}

/** Valid orders' answers that were neither 202 nor an allowed refusal (429 aside), by label. */
export function wrongAnswers(answers: readonly Answer[], refusals: readonly string[]): Map<string, number> {
  const wrong = new Map<string, number>();
  for (const a of answers) {
    const what = label(a);
    if (a.status === 202 || a.status === 429 || refusals.includes(what) || a.error === 'timeout') continue;
    wrong.set(what, (wrong.get(what) ?? 0) + 1);
  }
  return wrong;
}

const listed = (m: Map<string, number>) => [...m].map(([what, n]) => `${n} x ${what}`).join(', ');

export async function commonChecks(input: CheckInput): Promise<{ checks: Check[]; figures: Figures }> {
  const { db, traffic, above } = input;
  const range = `id > ${sqlId(above)}`;
  const accepted = traffic.acceptedIds();
  const found = await statusesOf(db, accepted);
  const missing = accepted.filter((id) => !found.has(id)).length;
  const stuck = [...found.values()].filter((status) => (OPEN_STATUSES as readonly string[]).includes(status)).length;
  const statusRows = await rows<{ status: string; n: number | string }>(db, `SELECT status, COUNT(*) AS n FROM orders WHERE ${range} GROUP BY status`);
  const statuses = Object.fromEntries(statusRows.map((r) => [r.status, Number(r.n)]));
  const scenarioRows = Object.values(statuses).reduce((a, b) => a + b, 0);
  const unanswered = scenarioRows - found.size;

  const twice = await count(db, `SELECT COUNT(*) AS n FROM (SELECT order_id FROM order_events WHERE order_${range} AND to_status = 'DISPATCHED' GROUP BY order_id HAVING COUNT(*) > 1) t`);
  const badDispatch = await count(
    db,
    `SELECT COUNT(*) AS n FROM orders o WHERE o.${range} AND o.status = 'DISPATCHED'
       AND (o.rider_id IS NULL OR NOT EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'DISPATCHED'))`,
  );
  const overCapacity = await count(db, 'SELECT COUNT(*) AS n FROM riders WHERE active_orders > capacity');
  const slotsOff = await count(
    db,
    `SELECT COUNT(*) AS n FROM riders r WHERE r.active_orders <> (SELECT COUNT(*) FROM orders o WHERE o.rider_id = r.id AND o.status IN ('DISPATCHED', 'PICKED_UP'))`,
  );

  const owed = await rows<{ status: string; n: number | string }>(db, `SELECT status, COUNT(*) AS n FROM notifications WHERE order_${range} AND status <> 'SENT' GROUP BY status`);
  const notSent = owed.reduce((sum, r) => sum + Number(r.n), 0);
  const unnotified = await count(
    db,
    `SELECT COUNT(*) AS n FROM orders o WHERE o.${range} AND o.status = 'DISPATCHED'
        AND (SELECT COUNT(*) FROM notifications n WHERE n.order_id = o.id AND n.status = 'SENT' AND n.kind IN ('customer.dispatched', 'merchant.dispatched')) < 2`,
  );
  const sentAll = await count(db, "SELECT COUNT(*) AS n FROM notifications WHERE status = 'SENT'");
  const provider = await providerView(input.providerUrl);
  const twiceDelivered = await deliveredTwice(input.providerUrl);
  const beyondLedger = provider.stats.deliveries - sentAll;

  const valid = traffic.answers;
  const hangs = valid.filter((a) => a.error === 'timeout').length;
  const wrong = wrongAnswers(valid, input.refusals);
  const gaveUp = [...traffic.keys.values()].filter((k) => k.gaveUp).length;

  const figures: Figures = {
    accepted: accepted.length,
    settled: found.size - stuck,
    lost: missing + stuck,
    dupRiders: twice + badDispatch + overCapacity + slotsOff,
    dupNotifications: Math.max(0, beyondLedger) + twiceDelivered.pairs,
    statuses,
  };
  const checks: Check[] = [
    { check: 'no fleet process died on its own', found: input.fleetFailure ?? 'none did', ok: input.fleetFailure === null },
    { check: 'every 202 is a row', found: `${accepted.length} orders answered 202, ${missing} not in MySQL`, ok: missing === 0 },
    {
      check: 'every accepted order reached DISPATCHED or was escalated (CANCELLED)',
      found: `${Object.entries(statuses).map(([st, n]) => `${st} ${n}`).join(', ') || 'no rows'}; ${stuck} accepted orders still ${OPEN_STATUSES.join(', ')}`,
      ok: stuck === 0,
    },
    { check: 'every row was answered 202 (a refusal wrote nothing)', found: `${scenarioRows} rows, ${Math.max(0, unanswered)} that no 202 named`, ok: unanswered <= 0 },
    { check: 'one key, one order', found: `${traffic.twoIds.length} keys answered 202 with two ids`, ok: traffic.twoIds.length === 0 },
    {
      check: 'one rider per order, no rider over capacity',
      found: `${twice} orders dispatched twice, ${badDispatch} DISPATCHED without a rider or event, ${overCapacity} riders over capacity, ${slotsOff} riders whose count is not their orders`,
      ok: twice + badDispatch + overCapacity + slotsOff === 0,
    },
    {
      check: 'every notification sent, once',
      found:
        `${notSent} of the scenario's notifications not SENT${notSent ? ` (${owed.map((r) => `${r.status} ${r.n}`).join(', ')})` : ''}, ${unnotified} DISPATCHED orders without both SENT; ` +
        `provider: ${provider.stats.deliveries} delivered against ${sentAll} SENT rows, ${provider.stats.duplicates} repeats of a key answered without delivering, ` +
        `${twiceDelivered.pairs} notifications delivered twice (of the newest ${twiceDelivered.listed})`,
      ok: notSent === 0 && unnotified === 0 && beyondLedger === 0 && twiceDelivered.pairs === 0,
    },
    { check: 'no request hung', found: `${hangs} of ${valid.length} answers took longer than the bound`, ok: hangs === 0 },
    { check: 'valid orders got 202 or the fault\'s refusal', found: wrong.size ? listed(wrong) : `all did (${input.refusals.join(', ') || 'no refusal expected'})`, ok: wrong.size === 0 },
    { check: 'every refused order was accepted on a retry', found: `${gaveUp} keys given up after retrying`, ok: gaveUp === 0 },
  ];
  return { checks, figures };
}
