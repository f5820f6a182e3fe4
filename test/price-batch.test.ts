import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { priceOrdersJob, recordPricingFailed, type PriceOrdersDeps } from '../jobs/price-orders.ts';
import { priceOrder, type PricingInput } from '../shared/orders/pricing.ts';
import { readOrder } from '../shared/orders/read-order.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { ZoneLoad } from '../shared/orders/zone-load.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestWeb, TEST_MERCHANT, type TestWeb } from './support/test-web.ts';

let web: TestWeb;

beforeAll(async () => {
  // A held order's lock is waited for this long in the batch's second pass.
  web = await createTestWeb({ lockWaitMs: 1500 });
});

afterAll(async () => {
  await web?.close();
});

/** The price job's dependencies, wired to the test web's write routine; `beforeCommit` runs between the read and the commit. */
function jobDeps(beforeCommit?: () => Promise<void>): PriceOrdersDeps & { threadCalls: number[]; inputs: PricingInput[]; booked: string[] } {
  const threadCalls: number[] = [];
  const inputs: PricingInput[] = [];
  const booked: string[] = [];
  return {
    db: web.database.db,
    writer: web.runtime.writer,
    priceMany: async (batch: readonly PricingInput[]) => {
      threadCalls.push(batch.length);
      inputs.push(...batch);
      await beforeCommit?.();
      return batch.map(priceOrder);
    },
    zoneLoad: new ZoneLoad(web.database.db),
    bookDispatch: async (zoneIds) => void booked.push(...zoneIds),
    lockWaitMs: web.config.lockWaitMs,
    retry: { baseMs: 30_000, maxMs: 900_000 },
    jobId: 'price-test-batch',
    logger: pino({ level: 'silent' }),
    threadCalls,
    inputs,
    booked,
  };
}

/** Takes orders' locks as another writer would, and keeps them until letGo(). */
async function holdLocks(orderIds: readonly string[]): Promise<{ letGo: () => Promise<void> }> {
  const held = await web.runtime.writer.locks.lock(orderIds, { waitMs: 0 });
  expect(held.held).toEqual(orderIds);
  return { letGo: () => held.release() };
}

const rowsOf = (ids: readonly string[]) => web.database.db('orders').whereIn('id', ids).orderBy('id');
const pricedEvents = (ids: readonly string[]) => web.database.db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICED' });
const seed = (count: number, status: 'CREATED' | 'CANCELLED' = 'CREATED') => seedOrders(web.database.db, { clientId: web.clientId, status, count });

describe('the price batch job', () => {
  it('moves every CREATED order of the batch to PRICED once, each with its own fee, ETA and event, in one thread call, and books the zone once', async () => {
    const { db } = web.database;
    const ids = await seed(200);
    // Each order its own dropoff, so a fee written to the wrong row shows.
    for (const [index, id] of ids.entries()) await db('orders').where({ id }).update({ dropoff_lat: 31.2 + index / 1000 });
    const deps = jobDeps();
    expect(await priceOrdersJob({ orderIds: ids, attempt: 0 }, deps)).toMatchObject({ priced: 200, movedOn: 0, failed: 0, missing: 0 });
    expect(deps.threadCalls).toEqual([200]);
    expect(deps.booked).toEqual([TEST_MERCHANT.zone_id]);

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
    expect(events.every((event) => event.from_status === 'CREATED' && event.version === 2 && event.actor === 'worker:price' && event.job_id === 'price-test-batch')).toBe(true);
  });

  it('writes to Redis only what a reader cached: an order nobody read gets no entry, a read one is reloaded at its new version', async () => {
    const ids = await seed(3);
    const { cache } = web.runtime.writer;
    await cache.fill((await readOrder(web.database.db, ids[1]!))!, await cache.epoch()); // a reader cached this one
    await priceOrdersJob({ orderIds: ids, attempt: 0 }, jobDeps());
    expect(await cache.get(ids[1]!)).toMatchObject({ kind: 'hit', record: { order: { id: ids[1], status: 'PRICED', version: 2 } } });
    for (const id of [ids[0]!, ids[2]!]) expect(await cache.get(id)).toEqual({ kind: 'stale', version: 1 }); // a short-lived mark, no data
  });

  it('run again (a duplicate job, a retry after a crash) changes nothing, and still books the zone', async () => {
    const ids = await seed(20);
    await priceOrdersJob({ orderIds: ids, attempt: 0 }, jobDeps());
    const before = await rowsOf(ids);
    const deps = jobDeps();
    expect(await priceOrdersJob({ orderIds: ids, attempt: 0 }, deps)).toMatchObject({ priced: 0, movedOn: 20 });
    expect(deps.threadCalls).toEqual([]); // nothing left to price: no thread call, no commit
    // Found PRICED: the zone may still be owed the booking of a run that failed after its commit.
    expect(deps.booked).toEqual([TEST_MERCHANT.zone_id]);
    expect(await rowsOf(ids)).toEqual(before);
    expect(await pricedEvents(ids)).toHaveLength(20);
  });

  it('an unknown order and one moved on are left alone; the rest is priced', async () => {
    const [fresh] = await seed(1);
    const [cancelled] = await seed(1, 'CANCELLED');
    expect(await priceOrdersJob({ orderIds: [fresh!, '999999999', cancelled!, fresh!], attempt: 0 }, jobDeps())).toMatchObject({
      priced: 1,
      movedOn: 1,
      missing: 1,
    });
    expect(await pricedEvents([fresh!])).toHaveLength(1);
    expect((await rowsOf([cancelled!]))[0]).toMatchObject({ status: 'CANCELLED', version: 1 });
  });

  it('an order cancelled between the read and the commit stays CANCELLED; the rest of the batch is priced', async () => {
    const ids = await seed(10);
    const victim = ids[4]!;
    const deps = jobDeps(async () => {
      const result = await transitionOrder(web.runtime.writer, { orderId: victim, to: 'CANCELLED', reason: 'changed my mind' }, { actor: 'client', waitMs: 1000 });
      expect(result.kind).toBe('done');
    });
    expect(await priceOrdersJob({ orderIds: ids, attempt: 0 }, deps)).toMatchObject({ priced: 9, movedOn: 1 });
    expect((await rowsOf([victim]))[0]).toMatchObject({ status: 'CANCELLED', version: 2, fee_cents: null });
    expect(await pricedEvents([victim])).toHaveLength(0);
    expect(await pricedEvents(ids)).toHaveLength(9);
  });

  it('an order another writer holds is not skipped: it is priced, once, in a second pass as soon as the holder lets go', async () => {
    const [free, held] = (await seed(2)) as [string, string];
    const holder = await holdLocks([held]);
    const pricing = priceOrdersJob({ orderIds: [free, held], attempt: 0 }, jobDeps());
    // The batch commits the order it could lock and waits for the held one.
    await vi.waitFor(async () => expect((await rowsOf([free]))[0].status).toBe('PRICED'), { timeout: 5000, interval: 20 });
    expect((await rowsOf([held]))[0].status).toBe('CREATED');
    await holder.letGo();
    expect(await pricing).toMatchObject({ priced: 2 });
    expect(await pricedEvents([free, held])).toHaveLength(2);
  });

  it('an order whose lock is not freed in time fails the job, whose retry prices only what is still CREATED', async () => {
    const [free, held] = (await seed(2)) as [string, string];
    const holder = await holdLocks([held]);
    try {
      await expect(priceOrdersJob({ orderIds: [free, held], attempt: 0 }, jobDeps())).rejects.toThrow(/1 of 2 orders were held by other writers/);
    } finally {
      await holder.letGo();
    }
    expect((await rowsOf([free, held])).map((row) => [row.status, row.version])).toEqual([
      ['PRICED', 2],
      ['CREATED', 1],
    ]);
    const retry = jobDeps();
    expect(await priceOrdersJob({ orderIds: [free, held], attempt: 0 }, retry)).toMatchObject({ priced: 1, movedOn: 1 });
    expect(retry.threadCalls).toEqual([1]);
    expect(await pricedEvents([free, held])).toHaveLength(2);
  });

  it('out of retries, the orders of the batch still CREATED are recorded PRICING_FAILED with the error; the others are left alone', async () => {
    const ids = await seed(3);
    await priceOrdersJob({ orderIds: [ids[0]!], attempt: 0 }, jobDeps());
    const recorded = await recordPricingFailed({ orderIds: ids, attempt: 0 }, new Error('the pricing thread kept dying'), jobDeps());
    expect(recorded).toBe(2);
    expect((await rowsOf(ids)).map((row) => row.status)).toEqual(['PRICED', 'PRICING_FAILED', 'PRICING_FAILED']);
    const failed = (await rowsOf([ids[2]!]))[0];
    expect(failed.last_error).toBe('the pricing thread kept dying');
    expect(failed.next_attempt_at).not.toBeNull();
  });
});
