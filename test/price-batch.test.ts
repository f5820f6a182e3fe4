import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { priceOrders, type PriceBatchDeps } from '../shared/orders/price-batch.ts';
import { priceOrder, type PricingInput } from '../shared/orders/pricing.ts';
import { ZoneLoad } from '../shared/orders/zone-load.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestWeb, TEST_MERCHANT, type TestWeb } from './support/test-web.ts';

let web: TestWeb;

beforeAll(async () => {
  // A held order's lock is waited for this long before its job gives up.
  web = await createTestWeb({ lockWaitMs: 1500 });
});

afterAll(async () => {
  await web?.close();
});

/** The worker's batch pricing, wired to the test web's order writer; `beforeCommit` runs between the read and the commit. */
function batchDeps(beforeCommit?: () => Promise<void>): PriceBatchDeps & { threadCalls: number[]; inputs: PricingInput[] } {
  const threadCalls: number[] = [];
  const inputs: PricingInput[] = [];
  return {
    ...web.runtime.writer.deps,
    change: web.runtime.writer.change,
    priceMany: async (batch: readonly PricingInput[]) => {
      threadCalls.push(batch.length);
      inputs.push(...batch);
      await beforeCommit?.();
      return batch.map(priceOrder);
    },
    zoneLoad: new ZoneLoad(web.database.db),
    actor: 'worker:price',
    threadCalls,
    inputs,
  };
}

/** What each job of the batch is answered: the outcome, or the error it fails with. */
const answers = async (deps: PriceBatchDeps, ids: readonly string[]) =>
  (await priceOrders(deps, ids)).map((result) => (result.ok ? result.value : { error: result.error.message }));

/** Takes an order's lock as another writer would, and keeps it until letGo(). */
async function holdLock(orderId: string): Promise<{ letGo: () => void; holder: Promise<void> }> {
  let letGo!: () => void;
  let isHeld!: () => void;
  const holding = new Promise<void>((resolve) => (isHeld = resolve));
  const holder = web.runtime.writer.deps.locks.withLock(orderId, async () => {
    isHeld();
    await new Promise<void>((resolve) => (letGo = resolve));
  });
  await holding;
  return { letGo, holder };
}

const rowsOf = (ids: readonly string[]) => web.database.db('orders').whereIn('id', ids).orderBy('id');
const pricedEvents = (ids: readonly string[]) => web.database.db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICED' });

describe('pricing orders in a batch', () => {
  it('moves every CREATED order of the batch to PRICED once, with its own fee and ETA and its event, in one thread call; the cache holds the new versions', async () => {
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 200 });
    // Each order its own dropoff, so a fee written to the wrong row shows.
    for (const [index, id] of ids.entries()) await db('orders').where({ id }).update({ dropoff_lat: 31.2 + index / 1000 });
    const deps = batchDeps();
    expect(await answers(deps, ids)).toEqual(ids.map(() => ({ outcome: 'priced', zoneId: TEST_MERCHANT.zone_id })));
    expect(deps.threadCalls).toEqual([200]);

    const rows = await rowsOf(ids);
    expect(rows.every((row) => row.status === 'PRICED' && row.version === 2)).toBe(true);
    const load = deps.inputs[0]!;
    for (const row of rows) {
      const expected = priceOrder({
        pickup: { lat: Number(row.pickup_lat), lng: Number(row.pickup_lng) },
        dropoff: { lat: Number(row.dropoff_lat), lng: Number(row.dropoff_lng) },
        itemCount: (typeof row.items === 'string' ? JSON.parse(row.items) : row.items).length,
        openOrdersInZone: load.openOrdersInZone,
        freeRidersInZone: load.freeRidersInZone,
      });
      expect({ id: String(row.id), fee: row.fee_cents, eta: row.eta_seconds }).toEqual({ id: String(row.id), fee: expected.feeCents, eta: expected.etaSeconds });
    }
    expect(new Set(rows.map((row) => row.fee_cents)).size).toBeGreaterThan(100);
    const events = await pricedEvents(ids);
    expect(events).toHaveLength(200);
    expect(new Set(events.map((event) => String(event.order_id))).size).toBe(200);
    expect(events.every((event) => event.from_status === 'CREATED' && event.version === 2 && event.actor === 'worker:price')).toBe(true);

    const { cache } = web.runtime.writer;
    for (const id of [ids[0]!, ids[199]!]) {
      expect(await cache.get(id)).toMatchObject({ kind: 'hit', record: { order: { id, status: 'PRICED', version: 2 } } });
    }
  });

  it('run again (a duplicate job, a retry after a crash) changes nothing', async () => {
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 20 });
    await priceOrders(batchDeps(), ids);
    const before = await rowsOf(ids);
    const deps = batchDeps();
    // Found PRICED: the answer names its zone, which may still be owed a dispatch booking.
    expect(await answers(deps, ids)).toEqual(ids.map(() => ({ outcome: 'already-moved-on', pricedInZone: TEST_MERCHANT.zone_id })));
    expect(deps.threadCalls).toEqual([]); // nothing left to price: no thread call, no commit
    expect(await rowsOf(ids)).toEqual(before);
    expect(await pricedEvents(ids)).toHaveLength(20);
  });

  it('answers each id asked, in order: an unknown order, one moved on, and an id asked twice', async () => {
    const { db } = web.database;
    const [fresh] = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 1 });
    const [cancelled] = await seedOrders(db, { clientId: web.clientId, status: 'CANCELLED', count: 1 });
    expect(await answers(batchDeps(), [fresh!, '999999999', cancelled!, fresh!])).toEqual([
      { outcome: 'priced', zoneId: TEST_MERCHANT.zone_id },
      { outcome: 'not-found' },
      { outcome: 'already-moved-on' },
      { outcome: 'priced', zoneId: TEST_MERCHANT.zone_id },
    ]);
    expect(await pricedEvents([fresh!])).toHaveLength(1);
    expect((await rowsOf([cancelled!]))[0]).toMatchObject({ status: 'CANCELLED', version: 1 });
  });

  it('an order cancelled between the read and the commit stays CANCELLED; the rest of the batch is priced', async () => {
    const { db } = web.database;
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 10 });
    const victim = ids[4]!;
    const deps = batchDeps(async () => {
      const result = await web.runtime.writer.change({ orderId: victim, to: 'CANCELLED', actor: 'client', reason: 'changed my mind' });
      expect(result.kind).toBe('done');
    });
    const outcomes = await answers(deps, ids);
    expect(outcomes[4]).toEqual({ outcome: 'already-moved-on' });
    expect(outcomes.filter((outcome) => 'outcome' in outcome && outcome.outcome === 'priced')).toHaveLength(9);
    expect((await rowsOf([victim]))[0]).toMatchObject({ status: 'CANCELLED', version: 2, fee_cents: null });
    expect(await pricedEvents([victim])).toHaveLength(0);
    expect(await pricedEvents(ids)).toHaveLength(9);
  });

  it('an order another run priced between the read and the commit is answered with its zone, so its dispatch booking is not lost', async () => {
    const { db } = web.database;
    const [raced] = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 1 });
    const deps = batchDeps(async () => {
      const result = await web.runtime.writer.change({ orderId: raced!, to: 'PRICED', from: ['CREATED'], actor: 'worker:price', patch: { fee_cents: 999 } });
      expect(result.kind).toBe('done');
    });
    expect(await answers(deps, [raced!])).toEqual([{ outcome: 'already-moved-on', pricedInZone: TEST_MERCHANT.zone_id }]);
    expect((await rowsOf([raced!]))[0]).toMatchObject({ status: 'PRICED', version: 2, fee_cents: 999 });
    expect(await pricedEvents([raced!])).toHaveLength(1);
  });

  it('an order another writer holds is not skipped: it is priced, once, as soon as the holder lets go', async () => {
    const { db } = web.database;
    const [free, held] = (await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 2 })) as [string, string];
    const { letGo, holder } = await holdLock(held);
    const pricing = answers(batchDeps(), [free, held]);
    // The batch commits the order it could lock and leaves the held one waiting for its lock.
    await vi.waitFor(async () => expect((await rowsOf([free]))[0].status).toBe('PRICED'), { timeout: 5000, interval: 20 });
    expect((await rowsOf([held]))[0].status).toBe('CREATED');
    letGo();
    await holder;
    expect(await pricing).toEqual([
      { outcome: 'priced', zoneId: TEST_MERCHANT.zone_id },
      { outcome: 'priced', zoneId: TEST_MERCHANT.zone_id },
    ]);
    expect(await pricedEvents([free, held])).toHaveLength(2);
  });

  it('an order whose lock is not freed in time fails alone: its job is retried, the rest of the batch stands', async () => {
    const { db } = web.database;
    const [free, held] = (await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 2 })) as [string, string];
    const { letGo, holder } = await holdLock(held);
    try {
      const outcomes = await answers(batchDeps(), [free, held]);
      expect(outcomes[0]).toEqual({ outcome: 'priced', zoneId: TEST_MERCHANT.zone_id });
      expect(outcomes[1]).toMatchObject({ error: expect.stringMatching(/lock/i) });
    } finally {
      letGo();
      await holder;
    }
    expect((await rowsOf([held]))[0]).toMatchObject({ status: 'CREATED', version: 1 });
    expect(await pricedEvents([free, held])).toHaveLength(1);
  });
});
