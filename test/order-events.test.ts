import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { writeOrders } from '../shared/orders/write-orders.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;

beforeAll(async () => {
  web = await createTestWeb();
  await web.database.db('riders').insert({ id: '7001', name: 'Rider One', zone_id: 'test-zone', lat: 31.24, lng: 121.5, capacity: 2 });
});

afterAll(async () => {
  await web?.close();
});

function sendEvent(id: string, type: unknown, apiKey = web.apiKey) {
  return web.runtime.app.inject({
    method: 'POST',
    url: `/v1/orders/${id}/events`,
    headers: { authorization: `Bearer ${apiKey}` },
    payload: { type },
  });
}

async function dispatchTo(id: string, riderId: string): Promise<void> {
  const writer = web.runtime.writer;
  const priced = await transitionOrder(writer, { orderId: id, to: 'PRICED', patch: { fee_cents: 500, eta_seconds: 900 } }, { actor: 'test', waitMs: 1000 });
  expect(priced.kind).toBe('done');
  const dispatched = await writeOrders(writer, {
    orderIds: [id],
    actor: 'test',
    waitMs: 1000,
    plan: () => [{ orderId: id, to: 'DISPATCHED', patch: { rider_id: riderId } }],
    alsoDo: async (trx) => {
      await trx('riders').where({ id: riderId }).increment('active_orders', 1);
    },
  });
  expect(dispatched.applied).toHaveLength(1);
}

describe('POST /v1/orders/:id/events', () => {
  it('walks an order DISPATCHED -> PICKED_UP -> DELIVERED, one order_events row per transition, and frees the rider', async () => {
    const id = await web.postOrder();
    await dispatchTo(id, '7001');
    expect((await web.database.db('riders').where({ id: '7001' }).first()).active_orders).toBe(1);

    const picked = await sendEvent(id, 'picked_up');
    expect(picked.statusCode).toBe(200);
    expect(picked.json()).toEqual({ id, status: 'PICKED_UP', version: 4 });
    const delivered = await sendEvent(id, 'delivered');
    expect(delivered.json()).toEqual({ id, status: 'DELIVERED', version: 5 });

    const events = await web.database.db('order_events').where({ order_id: id }).orderBy('version');
    expect(events.map((e) => [e.from_status, e.to_status, e.version])).toEqual([
      [null, 'CREATED', 1],
      ['CREATED', 'PRICED', 2],
      ['PRICED', 'DISPATCHED', 3],
      ['DISPATCHED', 'PICKED_UP', 4],
      ['PICKED_UP', 'DELIVERED', 5],
    ]);
    expect((await web.database.db('riders').where({ id: '7001' }).first()).active_orders).toBe(0);
  });

  it('an illegal transition is a 409 ILLEGAL_TRANSITION that writes nothing', async () => {
    const id = await web.postOrder();
    for (const type of ['picked_up', 'delivered']) {
      const res = await sendEvent(id, type);
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 'CREATED', version: 1 });
    }
    const row = await web.database.db('orders').where({ id }).first();
    expect(row).toMatchObject({ status: 'CREATED', version: 1 });
    expect(await web.database.db('order_events').where({ order_id: id })).toHaveLength(1);
  });

  it('cancel works once before pickup and tells the customer; a second cancel is a 409', async () => {
    const id = await web.postOrder();
    const first = await sendEvent(id, 'cancel');
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ id, status: 'CANCELLED', version: 2 });
    // The customer is owed a message: its ledger row committed with the cancel, its batch job enqueued.
    const ledger = await web.database.db('notifications').where({ order_id: id });
    expect(ledger.map((row) => [row.kind, row.status])).toEqual([['customer.cancelled', 'PENDING']]);
    const job = await web.runtime.producer.queue('notifications').getJob(ledger[0].job_id);
    expect(job?.data).toEqual({ notifications: [{ orderId: id, kind: 'customer.cancelled' }] });
    const second = await sendEvent(id, 'cancel');
    expect(second.statusCode).toBe(409);
    expect(second.json().status).toBe('CANCELLED');
  });

  it('an unknown event type is a 400 that lists the allowed ones; another client\'s order is a 404', async () => {
    const id = await web.postOrder();
    const bad = await sendEvent(id, 'teleported');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({
      code: 'VALIDATION_FAILED',
      field: 'type',
      message: 'type must be one of picked_up, delivered, cancel, got "teleported"',
    });
    const foreign = await sendEvent(id, 'cancel', web.otherApiKey);
    expect(foreign.statusCode).toBe(404);
    expect((await web.database.db('orders').where({ id }).first()).status).toBe('CREATED');
  });
});

describe('the write routine', () => {
  it('of 20 concurrent attempts at one transition exactly one wins; the rest change nothing', async () => {
    const id = await web.postOrder();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => transitionOrder(web.runtime.writer, { orderId: id, to: 'PRICED', from: ['CREATED'] }, { actor: 'test', waitMs: 10_000 })),
    );
    expect(results.filter((r) => r.kind === 'done')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'illegal')).toHaveLength(19);
    expect((await web.database.db('orders').where({ id }).first()).version).toBe(2);
    expect(await web.database.db('order_events').where({ order_id: id, to_status: 'PRICED' })).toHaveLength(1);
  });

  it('a failing side effect rolls the transition back, events and ledger rows included', async () => {
    const id = await web.postOrder();
    await expect(
      writeOrders(web.runtime.writer, {
        orderIds: [id],
        actor: 'test',
        waitMs: 1000,
        plan: () => [{ orderId: id, to: 'CANCELLED' }],
        alsoDo: async () => {
          throw new Error('side effect failed');
        },
      }),
    ).rejects.toThrow('side effect failed');
    expect((await web.database.db('orders').where({ id }).first()).status).toBe('CREATED');
    expect(await web.database.db('order_events').where({ order_id: id })).toHaveLength(1);
    expect(await web.database.db('notifications').where({ order_id: id })).toHaveLength(0);
  });

  it('refuses a plan that breaks the state machine, and writes nothing', async () => {
    const id = await web.postOrder();
    await expect(
      writeOrders(web.runtime.writer, { orderIds: [id], actor: 'test', waitMs: 1000, plan: () => [{ orderId: id, to: 'DELIVERED' }] }),
    ).rejects.toThrow('CREATED -> DELIVERED is not a legal transition');
    expect((await web.database.db('orders').where({ id }).first())).toMatchObject({ status: 'CREATED', version: 1 });
  });
});
