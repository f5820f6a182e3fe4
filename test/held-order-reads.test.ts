import { request, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authenticator } from '../shared/clients/authenticator.ts';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { parseExposition } from './support/prometheus-text.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

/**
 * A GET /v1/orders/:id (or its /tracking) this process can answer from what it holds is answered before Fastify
 * (shared/http/held-order-reads.ts); everything else goes to the route. Over a socket: app.inject()
 * calls Fastify's own handler and never meets the server's listener. Each answer says which path
 * gave it. A query string always goes to the route
 * (the route ignores it): the route's own answer to compare with.
 */
/**
 * What a read needs to be decided in memory, held steady for the length of a test: the key's
 * answer and the order's copy cached (each for far longer than a test takes), and a rate-limit
 * window that lasts as long (openWindow) with leases far larger than a test spends, so that which
 * path answers is never up to the clock, nor to how many requests came before.
 */
const STEADY = { authCacheTtlSeconds: 600, l1TtlMs: 60_000, rateLimitPerSecond: 1_000_000 } as const; // leases of 10,000 tokens

/** The client's rate-limit window opened for two minutes: this process's leases live as long. */
async function openWindow(target: TestWeb, clientId: string, spent = 0): Promise<void> {
  await redis.set(`${target.config.cachePrefix}:ratelimit:${clientId}`, String(spent), 'PX', 120_000);
}

const RIDER = '9201';
/** An order whose JSON has characters of more than one byte. */
const NOT_ASCII = { dropoff: { lat: 31.2304, lng: 121.4737, address: '世纪大道88号', phone: '+8613800000000' } };
let web: TestWeb;
let base: string;
/** Calls of the one step only an answer given before Fastify takes (a spy that lets each through). */
let heldAnswers: ReturnType<typeof vi.spyOn>;
const logged: Array<{ msg: string }> = [];
const SHORTCUT_FAILED = 'order read before Fastify failed';
const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });

beforeAll(async () => {
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
  web = await createTestWeb(STEADY, { logger });
  await web.database.db('riders').insert({ id: RIDER, name: 'Held', zone_id: 'test-zone', lat: 31.241, lng: 121.501 });
  await openWindow(web, web.clientId);
  heldAnswers = vi.spyOn(web.runtime.reader, 'countHeldRead');
  await web.runtime.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(web.runtime.app.server.address() as { port: number }).port}`;
});

// A fault inside the shortcut still gets an answer (the route's), so only its log line shows it.
afterEach(() => {
  const failed = logged.filter((line) => line.msg.startsWith(SHORTCUT_FAILED));
  logged.length = 0;
  expect(failed).toEqual([]);
});

afterAll(async () => {
  redis.disconnect();
  await web?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  /** Whether the route answered it (not the shortcut before Fastify). */
  readonly route: boolean;
}

/** node:http rather than fetch: its rawHeaders keep the answer's headers as sent, in their order. */
async function get(path: string, headers: Record<string, string> = {}, apiKey = web.apiKey, method = 'GET'): Promise<Answer> {
  const before = heldAnswers.mock.calls.length;
  const res = await new Promise<IncomingMessage>((resolve, reject) =>
    request(`${base}${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, ...headers } }, resolve).on('error', reject).end(),
  );
  let body = '';
  for await (const chunk of res) body += String(chunk);
  const pairs: Array<readonly [string, string]> = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
  return { status: res.statusCode!, headers: pairs, body, route: heldAnswers.mock.calls.length === before };
}

const header = (answer: Answer, name: string) => answer.headers.find(([n]) => n === name)?.[1];

/**
 * The headers two answers must share, in their order: all of them, with the values that differ
 * between two requests left out: the request's id, the client's count left, the window's seconds
 * left (the second may turn between the two) and the clock.
 */
const comparable = (answer: Answer) =>
  answer.headers.map(([name, value]) => (['x-request-id', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'date'].includes(name) ? [name] : [name, value]));

async function metrics() {
  const families = parseExposition((await web.runtime.app.inject({ method: 'GET', url: '/metrics' })).body);
  const sample = (family: string, labels: Record<string, string>) =>
    families.get(family)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  return {
    l1Reads: sample('courier_order_reads_total', { source: 'l1' }),
    timed: (status: string, route = '/v1/orders/:id') => sample('courier_http_request_seconds', { route, status, le: '+Inf' }),
  };
}

/** An order this process holds (its first read went to the route, which made its body). */
async function heldOrder(overrides?: Record<string, unknown>): Promise<string> {
  const id = await web.postOrder(overrides);
  const first = await get(`/v1/orders/${id}`);
  expect(first).toMatchObject({ status: 200, route: true });
  return id;
}

describe('a read of an order this process holds', () => {
  it("is answered before Fastify, with the route's very answer: 200, and 304 for a tag the client has", async () => {
    const id = await heldOrder(NOT_ASCII); // its Content-Length counts bytes, not characters
    for (const headers of [{}, { 'if-none-match': '"v1"' }, { 'if-none-match': 'W/"v0", W/"v1"' }] as Record<string, string>[]) {
      const route = await get(`/v1/orders/${id}?via=route`, headers);
      const held = await get(`/v1/orders/${id}`, headers);
      expect(route.route).toBe(true);
      expect(held.route).toBe(false);
      expect(held.status).toBe(route.status);
      expect(comparable(held)).toEqual(comparable(route));
      expect(held.body).toBe(route.body);
      // Spent from the same budget: one token each.
      expect(Number(header(held, 'x-ratelimit-remaining'))).toBe(Number(header(route, 'x-ratelimit-remaining')) - 1);
      expect(Number(header(route, 'x-ratelimit-reset')) - Number(header(held, 'x-ratelimit-reset'))).toBeOneOf([0, 1]);
    }
    const fresh = await get(`/v1/orders/${id}`);
    expect(JSON.parse(fresh.body)).toMatchObject({ id, version: 1, status: 'CREATED' });
    expect(header(fresh, 'etag')).toBe('"v1"');
  });

  it('takes a good X-Request-Id and replaces a bad one, as the route does', async () => {
    const id = await heldOrder();
    const good = await get(`/v1/orders/${id}`, { 'x-request-id': 'trace-1234' });
    const bad = await get(`/v1/orders/${id}`, { 'x-request-id': 'no spaces allowed' });
    expect([good.route, bad.route]).toEqual([false, false]);
    expect(header(good, 'x-request-id')).toBe('trace-1234');
    expect(header(bad, 'x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('notes its key as used (written to api_clients.last_used_at once a minute)', async () => {
    const id = await heldOrder();
    await web.runtime.lastUsed.flush();
    expect(await get(`/v1/orders/${id}`)).toMatchObject({ status: 200, route: false });
    expect(await web.runtime.lastUsed.flush()).toBe(1);
  });

  it('is counted once, as an L1 read and in the route’s request timings, whichever path answers', async () => {
    const id = await heldOrder();
    const before = await metrics();
    expect((await get(`/v1/orders/${id}`)).route).toBe(false);
    expect((await get(`/v1/orders/${id}`, { 'if-none-match': '"v1"' })).route).toBe(false);
    expect((await get(`/v1/orders/${id}?via=route`)).route).toBe(true);
    const after = await metrics();
    expect(after.l1Reads - before.l1Reads).toBe(3);
    expect(after.timed('200') - before.timed('200')).toBe(2);
    expect(after.timed('304') - before.timed('304')).toBe(1);
  });

  it('of a new version: the old answer is never served; the route makes the new one, then it is held', async () => {
    const id = await heldOrder();
    const event = await web.runtime.app.inject({ method: 'POST', url: `/v1/orders/${id}/events`, headers: { authorization: `Bearer ${web.apiKey}` }, payload: { type: 'cancel' } });
    expect(event.statusCode).toBe(200);
    const next = await get(`/v1/orders/${id}`, { 'if-none-match': '"v1"' });
    expect(next).toMatchObject({ status: 200, route: true });
    expect(JSON.parse(next.body)).toMatchObject({ version: 2, status: 'CANCELLED' });
    expect(await get(`/v1/orders/${id}`, { 'if-none-match': '"v2"' })).toMatchObject({ status: 304, route: false });
  });
});

describe('a tracking view of an order this process holds', () => {
  /** A dispatched order with a rider and an ETA; its first tracking view went to the route, which read its parts. */
  async function trackedOrder(): Promise<string> {
    const id = await web.postOrder(NOT_ASCII);
    const writer = web.runtime.writer;
    await transitionOrder(writer, { orderId: id, to: 'PRICED', patch: { fee_cents: 500, eta_seconds: 1200 } }, { actor: 'test', waitMs: 1000 });
    await transitionOrder(writer, { orderId: id, to: 'DISPATCHED', patch: { rider_id: RIDER } }, { actor: 'test', waitMs: 1000 });
    expect(await get(`/v1/orders/${id}/tracking`)).toMatchObject({ status: 200, route: true });
    return id;
  }
  it("is answered before Fastify with the route's very answer, made per request, counted once as the route counts it", async () => {
    const id = await trackedOrder();
    const before = await metrics();
    // The seconds left follow the clock: held still between the two answers, then moved on.
    const clock = vi.spyOn(Date, 'now').mockReturnValue(Date.now());
    try {
      const route = await get(`/v1/orders/${id}/tracking?via=route`);
      const held = await get(`/v1/orders/${id}/tracking`);
      expect([route.route, held.route]).toEqual([true, false]);
      expect(held.status).toBe(200);
      expect(comparable(held)).toEqual(comparable(route));
      expect(held.body).toBe(route.body);
      const view = JSON.parse(held.body) as { eta: { remainingSeconds: number } };
      expect(view).toMatchObject({ order: { id, status: 'DISPATCHED', riderId: RIDER }, rider: { riderId: RIDER }, missing: [] });
      expect(view.eta.remainingSeconds).toBeGreaterThan(1100);
      expect(Number(header(held, 'x-ratelimit-remaining'))).toBe(Number(header(route, 'x-ratelimit-remaining')) - 1);
      clock.mockReturnValue(Date.now() + 5_000);
      const later = await get(`/v1/orders/${id}/tracking`);
      expect(later.route).toBe(false);
      expect((JSON.parse(later.body) as typeof view).eta.remainingSeconds).toBe(view.eta.remainingSeconds - 5);
    } finally {
      clock.mockRestore();
    }
    const after = await metrics();
    expect(after.l1Reads - before.l1Reads).toBe(3);
    expect(after.timed('200', '/v1/orders/:id/tracking') - before.timed('200', '/v1/orders/:id/tracking')).toBe(3);
  });

  it('a part not held, another client’s order, HEAD: the route', async () => {
    const id = await trackedOrder();
    expect(await get('/v1/orders/1', {}, web.otherApiKey)).toMatchObject({ status: 404, route: true }); // its key now held
    const stranger = await get(`/v1/orders/${id}/tracking`, {}, web.otherApiKey);
    expect(stranger).toMatchObject({ status: 404, route: true });
    expect(await get(`/v1/orders/${id}/tracking`, {}, web.apiKey, 'HEAD')).toMatchObject({ status: 200, route: true });
    // A new version (picked up) holds no dispatch time yet: its first view reads it, on the route.
    const event = await web.runtime.app.inject({ method: 'POST', url: `/v1/orders/${id}/events`, headers: { authorization: `Bearer ${web.apiKey}` }, payload: { type: 'picked_up' } });
    expect(event.statusCode).toBe(200);
    expect(await get(`/v1/orders/${id}`)).toMatchObject({ status: 200, route: true }); // the new version into L1
    expect(await get(`/v1/orders/${id}/tracking`)).toMatchObject({ status: 200, route: true });
    expect(await get(`/v1/orders/${id}/tracking`)).toMatchObject({ status: 200, route: false });
  });
});

describe('what cannot be decided in memory goes to the route, which answers it', () => {
  it('no key, a bad key, another client’s order, an unknown order, HEAD', async () => {
    const id = await heldOrder();
    const noKey = await fetch(`${base}/v1/orders/${id}`);
    expect(noKey.status).toBe(401);
    expect(await get(`/v1/orders/${id}`, {}, 'ck_not-a-key-at-all')).toMatchObject({ status: 401, route: true });
    expect(await get('/v1/orders/1', {}, web.otherApiKey)).toMatchObject({ status: 404, route: true }); // its key now held too
    const before = await metrics();
    const stranger = await get(`/v1/orders/${id}`, {}, web.otherApiKey);
    // Looked at here, then read by the route: one read.
    expect((await metrics()).l1Reads - before.l1Reads).toBe(1);
    expect(stranger).toMatchObject({ status: 404, route: true });
    expect(JSON.parse(stranger.body)).toMatchObject({ code: 'ORDER_NOT_FOUND' });
    expect(await get('/v1/orders/999999999')).toMatchObject({ status: 404, route: true });
    expect(await get(`/v1/orders/${id}`, {}, web.apiKey, 'HEAD')).toMatchObject({ status: 200, route: true });
  });

  it('the other forms of a good key, and other spellings of a held id: the route reads them as it always did', async () => {
    const id = await heldOrder();
    const withAuthorization = async (authorization: string) => {
      const res = await fetch(`${base}/v1/orders/${id}`, { headers: { authorization } });
      await res.arrayBuffer();
      return res.status;
    };
    for (const form of [`bearer ${web.apiKey}`, `Bearer  ${web.apiKey}`, `BEARER\t${web.apiKey}`]) {
      const before = heldAnswers.mock.calls.length;
      expect(await withAuthorization(form), form).toBe(200);
      expect(heldAnswers.mock.calls.length - before, form).toBe(0);
    }
    expect(await withAuthorization(`Bearer ${web.apiKey}x`)).toBe(401);
    expect(await get(`/v1/orders/0${id}`)).toMatchObject({ status: 404, route: true });
    expect(await get(`/v1/orders/${id}?fields=all`)).toMatchObject({ status: 200, route: true });
    expect(await get(`/v1/orders/${id}/`)).toMatchObject({ route: true });
    expect(await get(`/v1/orders/${id}`)).toMatchObject({ status: 200, route: false });
  });

  it('a key with white space in it is refused unread, so no held key has any (what the shortcut reads keys by)', async () => {
    const authenticator = new Authenticator(web.database.db, { ttlSeconds: 60 });
    for (const key of [`${web.apiKey} x`, `ck_with\ttab-inside`, `${web.apiKey}\u00a0`]) {
      expect(await authenticator.authenticate(key)).toBeUndefined();
      expect(authenticator.peek(key)).toBeUndefined(); // not even held as a bad key: never looked up
    }
    expect(await authenticator.authenticate('ck_no-such-key-at-all')).toBeUndefined();
    expect(authenticator.peek('ck_no-such-key-at-all')).toBeNull(); // looked up, and held as bad
  });

  it('never past the client’s rate: only tokens this process leased are spent here; the route leases the next, or refuses (429)', async () => {
    const rated = await createApiClient(web.database.db, new IdGenerator(9), 'rated app', { ratePerSecond: 300 }); // leases of 3 tokens
    const counter = `${web.config.cachePrefix}:ratelimit:${rated.id}`;
    await redis.set(counter, '0', 'PX', 120_000);
    const posted = await web.runtime.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { authorization: `Bearer ${rated.key}`, 'idempotency-key': `rated-${Date.now()}` },
      payload: orderBody(),
    });
    expect(posted.statusCode).toBe(202); // a lease of 3 taken, one spent
    await web.runtime.intake.idle();
    const read = () => get(`/v1/orders/${(posted.json() as { id: string }).id}`, {}, rated.key);
    expect(await read()).toMatchObject({ status: 200, route: true }); // its body made; the lease's second token
    await redis.set(counter, '297', 'KEEPTTL'); // other processes spent all but 3 of the window
    const before = await metrics();
    const answers: Answer[] = [];
    for (let i = 0; i < 7; i++) answers.push(await read());
    // A read refused reads nothing; one handed on is read once, by the route.
    expect((await metrics()).l1Reads - before.l1Reads).toBe(4);
    expect(answers.map((a) => `${a.status} ${a.route ? 'route' : 'held'}`)).toEqual([
      '200 held', // the lease's last token
      '200 route', '200 held', '200 held', // a lease of the window's last 3
      '429 route', '429 route', '429 route',
    ]);
    expect(answers.map((a) => header(a, 'x-ratelimit-remaining'))).toEqual(['297', '2', '1', '0', '0', '0', '0']);
  });

  it('a fault of the shortcut costs no request: the route answers, and the fault is logged', async () => {
    const id = await heldOrder();
    const reader = web.runtime.reader;
    const peek = reader.peek.bind(reader);
    const spy = vi.spyOn(reader, 'peek').mockImplementation((orderId, count) => {
      if (count === false) throw new Error('a bug in the shortcut');
      return peek(orderId, count);
    });
    try {
      expect(await get(`/v1/orders/${id}`)).toMatchObject({ status: 200, route: true });
      expect(logged.some((line) => line.msg.startsWith(SHORTCUT_FAILED))).toBe(true);
    } finally {
      spy.mockRestore();
      logged.length = 0; // seen: not a fault of another test
    }
  });
});

describe('ORDER_READ_FAST_PATH=off', () => {
  it('sends every read through the route', async () => {
    const off = await createTestWeb({ ...STEADY, orderReadFastPath: 'off' });
    const held = vi.spyOn(off.runtime.reader, 'countHeldRead');
    try {
      await off.runtime.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (off.runtime.app.server.address() as { port: number }).port;
      await openWindow(off, off.clientId);
      const id = await off.postOrder();
      const statuses = [];
      for (const tag of ['', '', '"v1"']) {
        const res = await fetch(`http://127.0.0.1:${port}/v1/orders/${id}`, { headers: { authorization: `Bearer ${off.apiKey}`, ...(tag ? { 'if-none-match': tag } : {}) } });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([200, 200, 304]);
      expect(held).not.toHaveBeenCalled();
    } finally {
      await off.close();
    }
  });
});

describe('an instance that is full or draining', () => {
  it('past HTTP_MAX_IN_FLIGHT, a held read goes to the route, which sheds it (503 OVERLOADED)', async () => {
    const full = await createTestWeb({ ...STEADY, httpMaxInFlight: 1 });
    const socket = new Socket();
    try {
      await full.runtime.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (full.runtime.app.server.address() as { port: number }).port;
      await openWindow(full, full.clientId);
      const id = await full.postOrder();
      const read = () => fetch(`http://127.0.0.1:${port}/v1/orders/${id}`, { headers: { authorization: `Bearer ${full.apiKey}` } });
      expect((await read()).status).toBe(200);
      // A request in flight: its head sent, its body not (the bound counts it from its first hook).
      const admitted = new Promise<void>((resolve) => full.runtime.app.server.once('request', () => resolve()));
      socket.connect(port, '127.0.0.1');
      socket.write(`POST /v1/orders HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${full.apiKey}\r\nIdempotency-Key: held-open\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
      await admitted;
      const shed = await read();
      expect(shed.status).toBe(503);
      expect(await shed.json()).toMatchObject({ code: 'OVERLOADED' });
    } finally {
      socket.destroy();
      await full.close();
    }
  });

  it('draining, a held read on a kept-alive connection goes to the route, which refuses it (503 SHUTTING_DOWN)', async () => {
    const draining = await createTestWeb({ ...STEADY, lockWaitMs: 20_000, dbTimeoutMs: 20_000 });
    const socket = new Socket();
    let lock: { release: () => Promise<unknown> } | undefined;
    try {
      await draining.runtime.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (draining.runtime.app.server.address() as { port: number }).port;
      await openWindow(draining, draining.clientId);
      const [held, busy] = [await draining.postOrder(), await draining.postOrder()];
      expect((await fetch(`http://127.0.0.1:${port}/v1/orders/${held}`, { headers: { authorization: `Bearer ${draining.apiKey}` } })).status).toBe(200);
      // A request in flight that the drain waits for: a cancel waiting for the order's lock, which the test holds.
      const locked = await draining.runtime.writer.locks.lock([busy], { waitMs: 0 });
      lock = locked;
      const waitsForLock = vi.spyOn(draining.runtime.writer.locks, 'lock');
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.connect(port, '127.0.0.1');
      const event = JSON.stringify({ type: 'cancel' });
      socket.write(`POST /v1/orders/${busy}/events HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${draining.apiKey}\r\nContent-Type: application/json\r\nContent-Length: ${event.length}\r\n\r\n${event}`);
      await vi.waitFor(() => expect(waitsForLock).toHaveBeenCalled(), { timeout: 10_000, interval: 5 });
      const drained = draining.closeRuntime();
      await vi.waitFor(() => expect(draining.runtime.app.server.listening).toBe(false), { timeout: 10_000, interval: 5 });
      const read = new Promise<void>((resolve) => draining.runtime.app.server.once('request', () => resolve()));
      socket.write(`GET /v1/orders/${held} HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${draining.apiKey}\r\n\r\n`);
      await read;
      await locked.release();
      await ended;
      await drained;
      const statuses = [...received.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => Number(m[1]));
      expect(statuses).toEqual([200, 503]);
      expect(received).toContain('"code":"SHUTTING_DOWN"');
    } finally {
      await lock?.release();
      socket.destroy();
      await draining.close();
    }
  });
});
