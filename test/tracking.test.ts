import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlTrackingParts, riderBehindSwitch, trackHeld, trackOrder } from '../shared/orders/tracking.ts';
import type { SwitchReader } from '../shared/switches/switches.ts';
import type { OrderView } from '../shared/orders/read-order.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;

beforeAll(async () => {
  // The part bound (TRACKING_PART_TIMEOUT_MS, 250 ms) is tested below with trackOrder's own; the
  // web's whole answer must not depend on a loaded machine's first query finishing within it.
  web = await createTestWeb({ trackingPartTimeoutMs: 5_000 });
  await web.database.db('riders').insert({ id: '9001', name: 'Tracked', zone_id: 'test-zone', lat: 31.241, lng: 121.501 });
});

afterAll(async () => {
  await web?.close();
});

describe('GET /v1/orders/:id/tracking', () => {
  it('answers the order, its rider position and ETA', async () => {
    const id = await web.postOrder();
    const writer = web.runtime.writer;
    await transitionOrder(writer, { orderId: id, to: 'PRICED', patch: { fee_cents: 500, eta_seconds: 1200 } }, { actor: 'test', waitMs: 1000 });
    await transitionOrder(writer, { orderId: id, to: 'DISPATCHED', patch: { rider_id: '9001' } }, { actor: 'test', waitMs: 1000 });
    const res = await web.runtime.app.inject({
      method: 'GET',
      url: `/v1/orders/${id}/tracking`,
      headers: { authorization: `Bearer ${web.apiKey}` },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.order).toMatchObject({ id, status: 'DISPATCHED', riderId: '9001' });
    expect(body.rider).toMatchObject({ riderId: '9001', lat: 31.241, lng: 121.501 });
    expect(body.eta.remainingSeconds).toBeGreaterThan(1100);
    expect(body.eta.remainingSeconds).toBeLessThanOrEqual(1200);
    expect(body.missing).toEqual([]);
  });

  it("another client's order is a 404", async () => {
    const id = await web.postOrder();
    const res = await web.runtime.app.inject({
      method: 'GET',
      url: `/v1/orders/${id}/tracking`,
      headers: { authorization: `Bearer ${web.otherApiKey}` },
    });
    expect(res.statusCode).toBe(404);
  });
});

describe('trackOrder', () => {
  const order = { id: '1', riderId: '9001', etaSeconds: 600 } as OrderView;

  it('a slow part is left out and named; the rest is answered within the bound', async () => {
    let releaseRider!: () => void;
    const riderStuck = new Promise<null>((resolve) => (releaseRider = () => resolve(null)));
    const started = performance.now();
    const view = await trackOrder(
      order,
      { rider: () => riderStuck, eta: async () => ({ remainingSeconds: 300, dispatchedAt: new Date(0).toISOString() }) },
      100,
    );
    expect(performance.now() - started).toBeLessThan(1000);
    expect(view).toMatchObject({ rider: null, eta: { remainingSeconds: 300 }, missing: ['rider'] });
    releaseRider();
  });

  it('a failing part is left out too', async () => {
    const view = await trackOrder(
      order,
      { rider: async () => ({ riderId: '9001', lat: 1, lng: 2, updatedAt: 'x' }), eta: async () => Promise.reject(new Error('down')) },
      100,
    );
    expect(view).toMatchObject({ rider: { riderId: '9001' }, eta: null, missing: ['eta'] });
  });
});

describe('trackHeld: the parts this process holds, in the same tick', () => {
  it('answers nothing until the parts are held, then what trackOrder answered, without MySQL; with the rider switch off, the rider named missing', async () => {
    const id = await web.postOrder();
    const writer = web.runtime.writer;
    await transitionOrder(writer, { orderId: id, to: 'PRICED', patch: { fee_cents: 500, eta_seconds: 1200 } }, { actor: 'test', waitMs: 1000 });
    await transitionOrder(writer, { orderId: id, to: 'DISPATCHED', patch: { rider_id: '9001' } }, { actor: 'test', waitMs: 1000 });
    const order = (await web.runtime.reader.get(id, { primary: true })).record!.order;
    const parts = mysqlTrackingParts(web.database.db, { riderTtlMs: 60_000, max: 100 });
    expect(trackHeld(order, parts), 'nothing held yet').toBeUndefined();
    const fetched = await trackOrder(order, parts, 1000);
    expect(fetched).toMatchObject({ rider: { riderId: '9001' }, eta: { dispatchedAt: expect.any(String) }, missing: [] });
    // The ETA counts down with the clock: the same view, give or take the second it may have crossed.
    const asFetched = (rider: unknown, missing: string[]) => ({
      ...fetched,
      rider,
      missing,
      eta: { dispatchedAt: fetched.eta!.dispatchedAt, remainingSeconds: expect.toSatisfy((n: number) => Math.abs(n - fetched.eta!.remainingSeconds) <= 1) },
    });
    // The rider moves in MySQL: the held position is the one fetched (kept for riderTtlMs), no query.
    await web.database.db('riders').where({ id: '9001' }).update({ lat: 30 });
    expect(trackHeld(order, parts)).toEqual(asFetched(fetched.rider, []));
    await web.database.db('riders').where({ id: '9001' }).update({ lat: 31.241 });
    let on = false;
    const switches = { isOn: () => on } as unknown as SwitchReader;
    expect(trackHeld(order, riderBehindSwitch(parts, switches))).toEqual(asFetched(null, ['rider']));
    on = true;
    expect(trackHeld(order, riderBehindSwitch(parts, switches))).toEqual(asFetched(fetched.rider, []));
  });
});
