import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let keyCounter = 0;

beforeAll(async () => {
  web = await createTestWeb();
});

afterAll(async () => {
  await web?.close();
});

function post(body: unknown, opts: { key?: string | null; apiKey?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  const apiKey = opts.apiKey === undefined ? web.apiKey : opts.apiKey;
  if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
  const key = opts.key === undefined ? `key-${++keyCounter}-${Date.now()}` : opts.key;
  if (key !== null) headers['idempotency-key'] = key;
  return web.runtime.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers,
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function orderCount(): Promise<number> {
  const [{ n }] = (await web.database.db('orders').count({ n: '*' })) as [{ n: number | string }];
  return Number(n);
}

describe('POST /v1/orders: the happy path', () => {
  it('answers 202 with a decimal id and CREATED, after the row is committed', async () => {
    const res = await post(orderBody());
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toEqual({ id: expect.stringMatching(/^[1-9][0-9]{0,18}$/), status: 'CREATED' });
    const row = await web.database.db('orders').where({ id: body.id }).first();
    expect(row).toMatchObject({ status: 'CREATED', version: 1, merchant_id: '1001', zone_id: 'test-zone' });
    expect(Number(row.pickup_lat)).toBeCloseTo(31.2397, 5);
    const events = await web.database.db('order_events').where({ order_id: body.id });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ from_status: null, to_status: 'CREATED', version: 1, actor: 'intake' });
  });

  it('enqueues the committed orders as one price batch job, whose id its row and CREATED event name', async () => {
    const res = await post(orderBody());
    const { id } = res.json();
    await web.runtime.intake.idle();
    const row = await web.database.db('orders').where({ id }).first();
    expect(row.price_job_id).toMatch(/^price-[0-9a-f]{10}-\d+$/); // this process's slot
    const job = await web.runtime.producer.queue('orders').getJob(row.price_job_id);
    expect(job?.name).toBe('orders.price');
    // The orders committed within PRICE_BATCH_WAIT_MS ride together (an earlier test's may share it).
    expect(job?.data).toEqual({ orderIds: expect.arrayContaining([id]), attempt: 0, batch: row.price_job_id.slice('price-'.length) });
    expect((await web.database.db('order_events').where({ order_id: id }).first()).job_id).toBe(row.price_job_id);
  });

  it('GET /v1/orders/:id returns the order to its client', async () => {
    const { id } = (await post(orderBody())).json();
    const res = await web.runtime.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: { authorization: `Bearer ${web.apiKey}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id,
      status: 'CREATED',
      version: 1,
      merchantId: '1001',
      riderId: null,
      feeCents: null,
      etaSeconds: null,
      dropoff: { lat: 31.2304, lng: 121.4737, address: '88 Century Ave', phone: '+8613800000000' },
      items: [{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }],
      note: 'ring twice',
    });
  });

  it("answers 404 ORDER_NOT_FOUND for another client's order, an unknown id and a malformed id", async () => {
    const { id } = (await post(orderBody())).json();
    for (const [url, apiKey] of [
      [`/v1/orders/${id}`, web.otherApiKey],
      ['/v1/orders/123456789', web.apiKey],
      ['/v1/orders/not-a-number', web.apiKey],
      ['/v1/orders/99999999999999999999999', web.apiKey],
    ] as const) {
      const res = await web.runtime.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${apiKey}` } });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().code).toBe('ORDER_NOT_FOUND');
    }
  });
});

describe('POST /v1/orders: bad input is a clear 4xx and changes nothing', () => {
  // Each names its field as a client writes it and says what was expected; a phone or an address is never echoed.
  const cases: [string, string, string, unknown][] = [
    ['missing merchantId', 'merchantId', 'merchantId is required', { ...orderBody(), merchantId: undefined }],
    ['non-numeric merchantId', 'merchantId', 'merchantId must be the id of a merchant, as a decimal string (1-19 digits, no leading zero)', orderBody({ merchantId: 'abc' })],
    ['latitude out of range', 'dropoff.lat', 'dropoff.lat must be between -90 and 90, got 91', orderBody({ dropoff: { ...orderBody().dropoff, lat: 91 } })],
    ['no items', 'items', 'items must have between 1 and 100 entries, got 0', orderBody({ items: [] })],
    ['fractional qty', 'items[0].qty', 'items[0].qty must be an integer, got 1.5', orderBody({ items: [{ sku: 'A', name: 'A', qty: 1.5, priceCents: 1 }] })],
    ['qty as a string', 'items[0].qty', 'items[0].qty must be an integer, got a string', orderBody({ items: [{ sku: 'A', name: 'A', qty: '2', priceCents: 1 }] })],
    ['an unknown field', 'tip', 'tip is not a known field: the body takes merchantId, dropoff, items, note', orderBody({ tip: 5 })],
    ['an unknown nested field', 'dropoff.floor', 'dropoff.floor is not a known field: dropoff takes lat, lng, address, phone', orderBody({ dropoff: { ...orderBody().dropoff, floor: 3 } })],
    ['a missing nested field', 'dropoff.phone', 'dropoff.phone is required', orderBody({ dropoff: { lat: 31.2, lng: 121.4, address: 'x' } })],
    ['an empty address', 'dropoff.address', 'dropoff.address must be between 1 and 500 characters long, got 0', orderBody({ dropoff: { ...orderBody().dropoff, address: '' } })],
    ['a bad phone', 'dropoff.phone', 'dropoff.phone must be a phone number: a digit first (after an optional +), then 4-30 digits, spaces, ( ) or -', orderBody({ dropoff: { ...orderBody().dropoff, phone: 'call me' } })],
  ];

  it.each(cases)('%s: 400 VALIDATION_FAILED naming %s and what was expected', async (_name, field, message, body) => {
    const before = await orderCount();
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'VALIDATION_FAILED', field, message });
    expect(await orderCount()).toBe(before);
  });

  it('a body that is not a JSON object: 400 VALIDATION_FAILED about the body (no field)', async () => {
    const res = await post('[1, 2]');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'VALIDATION_FAILED', message: 'the body must be a JSON object, got an array' });
  });

  it('text/plain and a missing Content-Type are one fault, one code: 400 UNSUPPORTED_CONTENT_TYPE', async () => {
    const before = await orderCount();
    for (const contentType of ['text/plain', undefined, 'application/x-www-form-urlencoded']) {
      const headers: Record<string, string> = { authorization: `Bearer ${web.apiKey}`, 'idempotency-key': `ct-${contentType}` };
      if (contentType) headers['content-type'] = contentType;
      const res = await web.runtime.app.inject({ method: 'POST', url: '/v1/orders', headers, payload: JSON.stringify(orderBody()) });
      expect(res.statusCode, String(contentType)).toBe(400);
      expect(res.json(), String(contentType)).toEqual({
        code: 'UNSUPPORTED_CONTENT_TYPE',
        message: `Send the body as JSON with Content-Type: application/json (this request had ${contentType ? `Content-Type ${contentType}` : 'no Content-Type'})`,
      });
    }
    expect(await orderCount()).toBe(before);
  });

  it('an empty body, declared JSON or not declared at all, is one fault, one code: 400 INVALID_JSON', async () => {
    for (const contentType of ['application/json', undefined]) {
      const headers: Record<string, string> = { authorization: `Bearer ${web.apiKey}`, 'idempotency-key': `empty-${contentType}` };
      if (contentType) headers['content-type'] = contentType;
      const res = await web.runtime.app.inject({ method: 'POST', url: '/v1/orders', headers });
      expect(res.statusCode, String(contentType)).toBe(400);
      expect(res.json(), String(contentType)).toEqual({
        code: 'INVALID_JSON',
        message: 'The request body is empty: send a JSON object with Content-Type: application/json',
      });
    }
  });

  it('invalid JSON: 400 INVALID_JSON', async () => {
    const res = await post('{"merchantId": ');
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('INVALID_JSON');
  });

  it('a body over the limit: 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await post(orderBody({ note: 'x'.repeat(web.config.bodyLimitBytes + 10) }));
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a missing or bad Idempotency-Key: 400 IDEMPOTENCY_KEY_REQUIRED naming the header', async () => {
    const before = await orderCount();
    for (const key of [null, 'x'.repeat(256), 'tab\tinside']) {
      const res = await post(orderBody(), { key });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REQUIRED', field: 'Idempotency-Key', message: expect.stringContaining('1-255 printable ASCII') });
    }
    expect(await orderCount()).toBe(before);
  });

  it('an unknown merchant: 422 UNKNOWN_MERCHANT', async () => {
    const before = await orderCount();
    const res = await post(orderBody({ merchantId: '424242' }));
    expect(res.statusCode).toBe(422);
    expect(res.json()).toEqual({ code: 'UNKNOWN_MERCHANT', field: 'merchantId', message: 'merchantId 424242 is not a merchant Courier knows' });
    expect(await orderCount()).toBe(before);
  });

  it('a missing, malformed or unknown API key: 401 UNAUTHORIZED before the body is looked at', async () => {
    const before = await orderCount();
    for (const apiKey of [null, 'ck_not-a-real-key-at-all', '']) {
      const res = await post(orderBody(), { apiKey });
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('UNAUTHORIZED');
    }
    const noBearer = await web.runtime.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { authorization: `Basic ${web.apiKey}`, 'idempotency-key': 'k', 'content-type': 'application/json' },
      payload: 'not even json',
    });
    expect(noBearer.statusCode).toBe(401);
    expect(await orderCount()).toBe(before);
  });

  it('an unknown route: 404 ROUTE_NOT_FOUND with the error body', async () => {
    const res = await web.runtime.app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('ROUTE_NOT_FOUND');
  });
});

describe('Idempotency-Key', () => {
  it('the same key with the same body returns the first answer and creates nothing', async () => {
    const first = await post(orderBody(), { key: 'same-key-1' });
    const before = await orderCount();
    // Same content, keys in another order: still the same request.
    const reordered = { note: 'ring twice', items: orderBody().items, dropoff: orderBody().dropoff, merchantId: '1001' };
    const second = await post(reordered, { key: 'same-key-1' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await orderCount()).toBe(before);
  });

  it('the same key with another body: 422 IDEMPOTENCY_KEY_REUSED, nothing created', async () => {
    await post(orderBody(), { key: 'same-key-2' });
    const before = await orderCount();
    const res = await post(orderBody({ note: 'another note' }), { key: 'same-key-2' });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await orderCount()).toBe(before);
  });

  it('keys are per client: two clients may use the same key', async () => {
    const a = await post(orderBody(), { key: 'shared-key' });
    const b = await post(orderBody(), { key: 'shared-key', apiKey: web.otherApiKey });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(b.json().id).not.toBe(a.json().id);
  });

  it('concurrent requests with one key create one order and all get its answer', async () => {
    const before = await orderCount();
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(orderBody(), { key: 'racing-key' })));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(20).fill(202));
    expect(new Set(answers.map((r) => r.json().id)).size).toBe(1);
    expect(answers.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(19);
    expect(await orderCount()).toBe(before + 1);
  });

  it('a repeated key inside a busy batch does not fail its neighbours', async () => {
    await post(orderBody(), { key: 'neighbour-key' });
    const before = await orderCount();
    const answers = await Promise.all([
      post(orderBody({ note: 'changed' }), { key: 'neighbour-key' }),
      ...Array.from({ length: 30 }, (_, i) => post(orderBody(), { key: `neighbour-${i}` })),
    ]);
    expect(answers[0]!.statusCode).toBe(422);
    expect(answers.slice(1).map((r) => r.statusCode)).toEqual(Array(30).fill(202));
    expect(await orderCount()).toBe(before + 30);
  });
});

describe('durability and micro-batching under concurrency', () => {
  it('every 202 is a committed row carried by an enqueued batch job, and concurrent requests share INSERTs and jobs', async () => {
    const batchesBefore = (await web.runtime.metrics.intakeBatchSize.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const n = 300;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => post(orderBody(), { key: `bulk-${i}` })));
    expect(answers.every((r) => r.statusCode === 202)).toBe(true);
    const ids = answers.map((r) => r.json().id as string);
    expect(new Set(ids).size).toBe(n);

    const rows = await web.database.db('orders').whereIn('id', ids).select('id', 'status');
    expect(rows).toHaveLength(n);
    expect(rows.every((r) => r.status === 'CREATED')).toBe(true);

    await web.runtime.intake.idle();
    // Each order rides in exactly one price job, the one its row names; a job per batch, not per order.
    const carriers = await web.database.db('orders').whereIn('id', ids).distinct('price_job_id').pluck('price_job_id');
    const jobs = await Promise.all(carriers.map((jobId: string) => web.runtime.producer.queue('orders').getJob(jobId)));
    const carried = jobs.flatMap((job) => (job?.data.orderIds ?? []) as string[]);
    const ours = new Set(ids);
    // Each of ours exactly once (a slot may also carry an earlier test's orders).
    expect(carried.filter((id) => ours.has(id)).sort()).toEqual([...ids].sort());
    expect(new Set(carried).size).toBe(carried.length);
    expect(jobs.length).toBeLessThan(n / 4);

    const batchesAfter = (await web.runtime.metrics.intakeBatchSize.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const batches = batchesAfter - batchesBefore;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(n / 4); // hundreds of orders, a handful of multi-row INSERTs
  });
});
