import { expect, vi } from 'vitest';
import type { Db } from '../../shared/db.ts';
import type { DevProviderStats } from '../../shared/notifications/dev-provider-app.ts';
import { TEST_MERCHANT, orderBody } from './test-web.ts';

/**
 * What the fault tests of a whole fleet share: zones with room for every order, posting orders over
 * HTTP as a client does, and the invariants read from what MySQL and the dev provider hold
 * afterwards (every 202 a row DISPATCHED once; every notification SENT once, the ledger and the
 * provider agreeing).
 */

export interface Zone {
  readonly merchantId: string;
  readonly zoneId: string;
}

/**
 * `zones` zones, each a merchant and `riders` riders of `capacity` slots near it: room for
 * zones x riders x capacity orders, in dispatch batches of a realistic size.
 */
export async function seedZones(db: Db, opts: { zones: number; riders: number; capacity: number }): Promise<Zone[]> {
  const merchants = Array.from({ length: opts.zones }, (_, z) => ({
    ...TEST_MERCHANT,
    id: String(1001 + z),
    name: `Kitchen ${z}`,
    zone_id: `zone-${z}`,
    lat: TEST_MERCHANT.lat + z * 0.02,
  }));
  await db('merchants').insert(merchants);
  await db('riders').insert(
    merchants.flatMap((merchant, z) =>
      Array.from({ length: opts.riders }, (_, i) => ({
        id: String(9000 + z * 100 + i),
        name: `R${z}-${i}`,
        zone_id: merchant.zone_id,
        lat: merchant.lat + (i % 5) * 0.001,
        lng: merchant.lng + Math.floor(i / 5) * 0.001,
        capacity: opts.capacity,
      })),
    ),
  );
  return merchants.map((merchant) => ({ merchantId: merchant.id, zoneId: merchant.zone_id }));
}

let posted = 0;

export interface PostOptions {
  readonly concurrency?: number;
  /** Told after each 202 (a test that acts in the middle of a wave). */
  readonly onAnswered?: (answered: number) => void;
  /**
   * A 503 is retried with the same key, as the API asks, up to this many times per order (default
   * 0: any answer but 202 throws); each retry is told to onRetried.
   */
  readonly retries?: number;
  readonly onRetried?: (code: string | undefined) => void;
}

/**
 * Posts `count` orders to the web at `api`, `concurrency` at a time, spread over the zones, each
 * under a fresh Idempotency-Key; resolves with the ids answered 202.
 */
export async function postOrders(api: string, apiKey: string, zones: readonly Zone[], count: number, opts: PostOptions = {}): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const one = async () => {
    while (next < count) {
      next += 1;
      const n = ++posted;
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${api}/v1/orders`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': `fleet-${process.pid}-${n}`, 'content-type': 'application/json' },
          body: JSON.stringify(orderBody({ merchantId: zones[n % zones.length]!.merchantId })),
        });
        const body = (await res.json()) as { id?: string; code?: string };
        if (res.status === 202 && body.id) {
          ids.push(body.id);
          opts.onAnswered?.(ids.length);
          break;
        }
        if (res.status !== 503 || attempt >= (opts.retries ?? 0)) throw new Error(`POST /v1/orders answered ${res.status}: ${JSON.stringify(body)}`);
        opts.onRetried?.(body.code);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, one));
  return ids;
}

/** How many of the orders are in each status. */
export async function statusesOf(db: Db, ids: readonly string[]): Promise<Record<string, number>> {
  const rows = (await db('orders').whereIn('id', ids).groupBy('status').select('status').count({ n: '*' })) as unknown as { status: string; n: number }[];
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Waits (bounded) until every one of the orders is DISPATCHED; the message of a timeout says where they are. */
export async function waitAllDispatched(db: Db, ids: readonly string[], timeoutMs: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const statuses = await statusesOf(db, ids);
      expect(statuses, 'orders by status').toEqual({ DISPATCHED: ids.length });
    },
    { timeout: timeoutMs, interval: 250 },
  );
}

/**
 * Every order DISPATCHED once: a PRICED and a DISPATCHED event each, exactly one, and the riders'
 * taken slots equal to the orders dispatched in the whole database (no rider given an order twice).
 */
export async function expectDispatchedOnce(db: Db, ids: readonly string[]): Promise<void> {
  expect(await statusesOf(db, ids)).toEqual({ DISPATCHED: ids.length });
  for (const to of ['PRICED', 'DISPATCHED']) {
    const perOrder = (await db('order_events').whereIn('order_id', ids).where({ to_status: to }).groupBy('order_id').select('order_id').count({ n: '*' })) as {
      order_id: string;
      n: number;
    }[];
    expect(perOrder, `orders with a ${to} event`).toHaveLength(ids.length);
    expect(
      perOrder.filter((row) => Number(row.n) !== 1),
      `orders ${to} more than once`,
    ).toEqual([]);
  }
  const [{ slots }] = (await db('riders').sum({ slots: 'active_orders' })) as [{ slots: number }];
  const [{ n: dispatched }] = (await db('orders').where({ status: 'DISPATCHED' }).count({ n: '*' })) as [{ n: number }];
  expect(Number(slots), 'rider slots taken').toBe(Number(dispatched));
}

export interface ProviderView {
  readonly stats: DevProviderStats;
  readonly messages: readonly { id: string; idempotencyKey: string; orderId: string; kind: string }[];
}

export async function providerView(provider: string): Promise<ProviderView> {
  const { stats } = (await (await fetch(`${provider}/control`)).json()) as { stats: DevProviderStats };
  const { messages } = (await (await fetch(`${provider}/v1/messages`)).json()) as { messages: ProviderView['messages'] };
  return { stats, messages };
}

export interface NotifiedOnce {
  /** Calls the ledger counted for these notifications beyond the first of each: what the provider may have seen again. */
  readonly repeatsCounted: number;
  /** The provider's figures now. */
  readonly stats: DevProviderStats;
}

/**
 * Waits (bounded) until both notifications of every order (customer and merchant, dispatched) are
 * SENT in the ledger, then checks that the provider agrees: it delivered exactly one message per
 * (order, kind), and each ledger row names the id of the message delivered. Resolves with what the
 * caller asserts against the provider's duplicate count.
 */
export async function expectNotifiedOnce(db: Db, provider: string, ids: readonly string[], timeoutMs: number): Promise<NotifiedOnce> {
  const kinds = ['customer.dispatched', 'merchant.dispatched'];
  await vi.waitFor(
    async () => {
      const rows = (await db('notifications').whereIn('order_id', ids).groupBy('status').select('status').count({ n: '*' })) as unknown as {
        status: string;
        n: number;
      }[];
      expect(Object.fromEntries(rows.map((row) => [row.status, Number(row.n)])), 'notifications by status').toEqual({ SENT: ids.length * kinds.length });
    },
    { timeout: timeoutMs, interval: 250 },
  );
  const ledger = (await db('notifications').whereIn('order_id', ids).select('order_id', 'kind', 'attempts', 'provider_message_id')) as {
    order_id: string;
    kind: string;
    attempts: number;
    provider_message_id: string;
  }[];
  expect(new Set(ledger.map((row) => row.kind))).toEqual(new Set(kinds));
  const { stats, messages } = await providerView(provider);
  const wanted = new Set(ids.map(String));
  const ours = messages.filter((message) => wanted.has(message.orderId));
  const byKey = new Map<string, string[]>();
  for (const message of ours) byKey.set(`${message.orderId}:${message.kind}`, [...(byKey.get(`${message.orderId}:${message.kind}`) ?? []), message.id]);
  expect(
    [...byKey].filter(([, delivered]) => delivered.length !== 1),
    'notifications the provider delivered more than once',
  ).toEqual([]);
  expect(ours, 'messages delivered').toHaveLength(ids.length * kinds.length);
  expect(
    ledger.filter((row) => byKey.get(`${row.order_id}:${row.kind}`)?.[0] !== row.provider_message_id),
    'ledger rows naming another message than the one delivered',
  ).toEqual([]);
  return { repeatsCounted: ledger.reduce((sum, row) => sum + Number(row.attempts) - 1, 0), stats };
}
