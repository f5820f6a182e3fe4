/**
 * The error codes of the public contract that only a malformed request, a busy order, a dead
 * dependency or a draining instance produce, each reached through the real app (inject(), and a
 * real socket where the transport matters): its status, its code, and that nothing changed.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

/** Slack on top of a configured bound, for a loaded machine. */
const SLACK_MS = 1500;

function sendEvent(web: TestWeb, id: string, type: string) {
  return web.runtime.app.inject({
    method: 'POST',
    url: `/v1/orders/${id}/events`,
    headers: { authorization: `Bearer ${web.apiKey}` },
    payload: { type },
  });
}

/** What a request could have changed in MySQL: every order row, and how many events and notifications there are. */
async function mysqlState(web: TestWeb) {
  const db = web.database.db;
  const [orders, [events], [notifications]] = await Promise.all([
    db('orders').select('id', 'status', 'version', 'updated_at', 'idempotency_key').orderBy('id'),
    db('order_events').count({ n: '*' }),
    db('notifications').count({ n: '*' }),
  ]);
  return { orders, events: Number(events!.n), notifications: Number(notifications!.n) };
}

/** What a change of the order could have changed in Redis: its cache entry and the notification jobs (a cancel owes one). */
async function redisState(web: TestWeb, id: string) {
  const cache = new OrderCache(web.runtime.redis, { prefix: web.config.cachePrefix, ttlMs: web.config.cacheTtlMs, finalTtlMs: web.config.cacheFinalTtlMs });
  const notifications = web.runtime.producer.queue('notifications');
  return { cached: await cache.get(id), jobs: await notifications.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed') };
}

/** Takes the order's lock as another writer would, until release(). */
async function holdLock(web: TestWeb, id: string): Promise<{ release: () => Promise<void> }> {
  const held = await web.runtime.writer.locks.lock([id], { waitMs: 0 });
  expect(held.held).toEqual([id]);
  return { release: () => held.release() };
}

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work;
  return [result, performance.now() - started];
}

describe('a body or URL the app cannot read', () => {
  let web: TestWeb;
  beforeAll(async () => {
    web = await createTestWeb();
  });
  afterAll(async () => {
    await web?.close();
  });

  it('a body that is not JSON: 400 UNSUPPORTED_CONTENT_TYPE, nothing written', async () => {
    const id = await web.postOrder();
    const before = await mysqlState(web);
    const auth = { authorization: `Bearer ${web.apiKey}` };
    const answers = await Promise.all([
      // no Content-Type at all
      web.runtime.app.inject({ method: 'POST', url: '/v1/orders', headers: { ...auth, 'idempotency-key': 'no-type' }, payload: Buffer.from(JSON.stringify(orderBody())) }),
      web.runtime.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { ...auth, 'idempotency-key': 'form', 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'merchantId=1001&note=ring+twice',
      }),
      web.runtime.app.inject({
        method: 'POST',
        url: `/v1/orders/${id}/events`,
        headers: { ...auth, 'content-type': 'application/xml' },
        payload: '<event type="cancel"/>',
      }),
    ]);
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toEqual({
        code: 'UNSUPPORTED_CONTENT_TYPE',
        message: expect.stringMatching(/^Send the body as JSON with Content-Type: application\/json \(this request had (no Content-Type|Content-Type [^)]+)\)$/),
      });
    }
    expect(await mysqlState(web)).toEqual(before);
  });

  it('a body shorter than its Content-Length, or a URL that is not valid percent-encoding: 400 BAD_REQUEST, nothing written', async () => {
    const id = await web.postOrder();
    const before = await mysqlState(web);
    const auth = { authorization: `Bearer ${web.apiKey}` };
    const body = JSON.stringify(orderBody());
    const answers = await Promise.all([
      web.runtime.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: { ...auth, 'idempotency-key': 'short-body', 'content-type': 'application/json', 'content-length': String(body.length + 10) },
        payload: body,
      }),
      web.runtime.app.inject({ method: 'POST', url: `/v1/orders/${id}%E0%A4%A/events`, headers: auth, payload: { type: 'cancel' } }),
      web.runtime.app.inject({ method: 'GET', url: '/v1/orders/%zz', headers: auth }),
    ]);
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toEqual({ code: 'BAD_REQUEST', message: expect.any(String) });
    }
    expect(await mysqlState(web)).toEqual(before);
  });
});

describe("a change that cannot take its order's lock in time", () => {
  const LOCK_WAIT_MS = 200;
  let web: TestWeb;
  beforeAll(async () => {
    web = await createTestWeb({ lockWaitMs: LOCK_WAIT_MS });
  });
  afterAll(async () => {
    await web?.close();
  });

  it('is a 503 ORDER_BUSY after the lock wait, changes nothing, and the retry goes through once the lock is free', async () => {
    const id = await web.postOrder();
    await web.runtime.reader.get(id); // cached, so a change would show in Redis too
    const before = { mysql: await mysqlState(web), redis: await redisState(web, id) };
    expect(before.redis.cached.kind).toBe('hit');
    const holder = await holdLock(web, id);
    try {
      const [res, ms] = await timed(sendEvent(web, id, 'cancel'));
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toEqual({ code: 'ORDER_BUSY', message: 'The order is being changed by someone else; retry' });
      expect(ms).toBeGreaterThanOrEqual(LOCK_WAIT_MS - 5);
      expect(ms).toBeLessThan(LOCK_WAIT_MS + SLACK_MS);
      expect({ mysql: await mysqlState(web), redis: await redisState(web, id) }).toEqual(before);
    } finally {
      await holder.release();
    }
    const retry = await sendEvent(web, id, 'cancel');
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json()).toEqual({ id, status: 'CANCELLED', version: 2 });
  });
});

describe('Redis away during a change', () => {
  const REDIS_TIMEOUT_MS = 300;

  it('Redis gone (connections refused): 503 REDIS_UNAVAILABLE at once, nothing written; the retry goes through once it is back', async () => {
    const redis = await PrivateRedis.start();
    let web: TestWeb | undefined;
    try {
      web = await createTestWeb({ redisUrl: redis.url, redisTimeoutMs: REDIS_TIMEOUT_MS });
      const w = web;
      const id = await w.postOrder();
      const before = await mysqlState(w);
      await redis.crash();
      const [res, ms] = await timed(sendEvent(w, id, 'cancel'));
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toEqual({ code: 'REDIS_UNAVAILABLE', message: 'Redis is unavailable; retry' });
      expect(ms).toBeLessThan(REDIS_TIMEOUT_MS + SLACK_MS);
      expect(await mysqlState(w)).toEqual(before);

      await redis.restart();
      await vi.waitFor(async () => expect((await sendEvent(w, id, 'cancel')).statusCode).not.toBe(503), { timeout: 15_000, interval: 50 });
      expect(await w.database.db('orders').where({ id }).first()).toMatchObject({ status: 'CANCELLED', version: 2 });
    } finally {
      await web?.close();
      await redis.stop();
    }
  });

  it('Redis silent (connected, never answering): 503 REDIS_UNAVAILABLE within its timeout, nothing written; the retry goes through once it answers', async () => {
    const redis = await PrivateRedis.start();
    const proxy = await TcpProxy.start('127.0.0.1', redis.port);
    let web: TestWeb | undefined;
    try {
      // A short lock TTL: the lock command sent into the silence arrives when it thaws and holds the order until it expires.
      web = await createTestWeb({ redisUrl: `redis://127.0.0.1:${proxy.port}`, redisTimeoutMs: REDIS_TIMEOUT_MS, lockTtlMs: 500 });
      const w = web;
      const id = await w.postOrder();
      const before = await mysqlState(w);
      proxy.freeze();
      const [res, ms] = await timed(sendEvent(w, id, 'cancel'));
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toEqual({ code: 'REDIS_UNAVAILABLE', message: 'Redis is unavailable; retry' });
      expect(ms).toBeLessThan(REDIS_TIMEOUT_MS + SLACK_MS);
      expect(await mysqlState(w)).toEqual(before);

      proxy.thaw();
      await vi.waitFor(async () => expect((await sendEvent(w, id, 'cancel')).statusCode).not.toBe(503), { timeout: 15_000, interval: 50 });
      expect(await w.database.db('orders').where({ id }).first()).toMatchObject({ status: 'CANCELLED', version: 2 });
    } finally {
      proxy.thaw();
      await web?.close();
      await proxy.close();
      await redis.stop();
    }
  });
});

describe('a draining instance', () => {
  it('/readyz answers 503 SHUTTING_DOWN once the process is stopping', async () => {
    let stopping = false;
    const web = await createTestWeb({}, { isShuttingDown: () => stopping });
    try {
      expect((await web.runtime.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      stopping = true;
      const res = await web.runtime.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'SHUTTING_DOWN', message: expect.any(String) });
    } finally {
      await web.close();
    }
  });

  it('a request that arrives on a kept-alive connection while the instance drains: 503 SHUTTING_DOWN, Connection: close, nothing written; the request in flight still finishes', async () => {
    const web = await createTestWeb({ lockWaitMs: 20_000, dbTimeoutMs: 20_000 });
    let socket: Socket | undefined;
    let holder: { release: () => Promise<void> } | undefined;
    try {
      const id = await web.postOrder();
      await web.runtime.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = web.runtime.app.server.address() as { port: number };
      let requests = 0;
      web.runtime.app.server.on('request', () => (requests += 1));

      // A request in flight: a cancel that waits for the order's lock, which the test holds.
      holder = await holdLock(web, id);
      const waitsForLock = vi.spyOn(web.runtime.writer.locks, 'lock');
      const conn = connect(port, '127.0.0.1');
      socket = conn;
      let received = '';
      conn.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const ended = new Promise<void>((resolve) => conn.once('close', () => resolve()));
      const event = JSON.stringify({ type: 'cancel' });
      conn.write(
        `POST /v1/orders/${id}/events HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${web.apiKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(event)}\r\n\r\n${event}`,
      );
      await vi.waitFor(() => expect(waitsForLock).toHaveBeenCalledWith([id], expect.objectContaining({ waitMs: 20_000 })), { timeout: 10_000, interval: 5 });

      // SIGTERM: the drain starts (the server stops listening) ...
      const draining = web.closeRuntime();
      await vi.waitFor(() => expect(web.runtime.app.server.listening).toBe(false), { timeout: 10_000, interval: 5 });
      const ordersBefore = (await mysqlState(web)).orders.map((order: { id: string }) => order.id);
      // ... and a new order arrives on the connection still open.
      const body = JSON.stringify(orderBody());
      conn.write(
        `POST /v1/orders HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${web.apiKey}\r\nIdempotency-Key: during-the-drain\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await vi.waitFor(() => expect(requests).toBe(2), { timeout: 10_000, interval: 5 });
      await holder.release();
      await ended;
      await draining;

      const responses = received.split(/(?=HTTP\/1\.1 )/).map((text) => {
        const [head, payload] = text.split('\r\n\r\n');
        const [status, ...headers] = head!.split('\r\n');
        return {
          status: Number(status!.split(' ')[1]),
          headers: Object.fromEntries(headers.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])),
          body: JSON.parse(payload!) as unknown,
        };
      });
      expect(responses).toHaveLength(2);
      expect(responses[0]).toMatchObject({ status: 200, body: { id, status: 'CANCELLED', version: 2 } });
      expect(responses[1]).toMatchObject({ status: 503, headers: { connection: 'close' } });
      expect(responses[1]!.body).toEqual({ code: 'SHUTTING_DOWN', message: 'This instance is shutting down; retry' });
      // The order refused was not written; the one cancel in flight is the only change.
      const after = await mysqlState(web);
      expect(after.orders.map((order: { id: string }) => order.id)).toEqual(ordersBefore);
      expect(after.orders.filter((order: { status: string }) => order.status === 'CANCELLED').map((order: { id: string }) => order.id)).toEqual([id]);
    } finally {
      await holder?.release();
      socket?.destroy();
      await web.close();
    }
  });
});
