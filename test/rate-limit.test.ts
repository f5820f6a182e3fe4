import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApiClient, type CreatedClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { createWebRuntime, type WebRuntime } from '../workers/web-runtime.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

/**
 * Rate limits per API client, shared by the web processes through Redis: a client over its rate
 * gets 429 RATE_LIMITED with Retry-After, reads as well as writes; other clients go on; with Redis
 * away the requests are let through (fail open) and counted.
 */

let web: TestWeb;
/** A second web process on the same MySQL and Redis, with a default rate of its own (3/s). */
let second: WebRuntime;
let limited: CreatedClient; // 5 requests a second of its own
let neighbour: CreatedClient; // 5 a second too: a counter of its own
let plain: CreatedClient; // the default rate
const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
let keyCounter = 0;

beforeAll(async () => {
  web = await createTestWeb();
  const ids = new IdGenerator(7);
  limited = await createApiClient(web.database.db, ids, 'limited app', { ratePerSecond: 5 });
  neighbour = await createApiClient(web.database.db, ids, 'neighbour app', { ratePerSecond: 5 });
  plain = await createApiClient(web.database.db, ids, 'plain app');
  second = await createWebRuntime({ ...web.config, rateLimitPerSecond: 3 }, pino({ level: 'silent' }));
});

afterAll(async () => {
  await second?.close();
  await web?.close();
  redis.disconnect();
});

const read = (app: WebRuntime, apiKey: string) =>
  app.app.inject({ method: 'GET', url: '/v1/orders/1', headers: { authorization: `Bearer ${apiKey}` } });

const write = (app: WebRuntime, apiKey: string, key = `rl-${++keyCounter}`) =>
  app.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': key, 'content-type': 'application/json' },
    payload: orderBody(),
  });

/** Waits (polling) until the client's current one-second window has ended, so the next request opens a new one. */
async function freshWindow(client: CreatedClient): Promise<void> {
  const key = `${web.config.cachePrefix}:ratelimit:${client.id}`;
  const started = performance.now();
  while ((await redis.pttl(key)) !== -2) {
    if (performance.now() - started > 3000) throw new Error('the window did not end');
    await new Promise((resolve) => setTimeout(resolve, 20)); // poll
  }
}

describe('a client over its rate', () => {
  it('gets 429 RATE_LIMITED with Retry-After and the limit headers; its write changes nothing', async () => {
    await freshWindow(limited);
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await read(web.runtime, limited.key));
    expect(answers.map((res) => res.statusCode)).toEqual([404, 404, 404, 404, 404]); // let through: the order just is not there
    expect(answers.map((res) => res.headers['x-ratelimit-remaining'])).toEqual(['4', '3', '2', '1', '0']);
    expect(answers[0]!.headers['x-ratelimit-limit']).toBe('5');

    const over = await read(web.runtime, limited.key);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toEqual({ code: 'RATE_LIMITED', message: 'This API key may make 5 requests per second; retry in 1 second' });
    expect(over.headers['retry-after']).toBe('1');
    expect(over.headers['x-request-id']).toBeDefined();

    const overWrite = await write(web.runtime, limited.key, 'rl-over');
    expect(overWrite.statusCode).toBe(429);
    expect(await web.database.db('orders').where({ idempotency_key: 'rl-over' }).first()).toBeUndefined();
    expect((await web.runtime.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^courier_http_rate_limited_requests_total\{process="web"\} [2-9]/m);
  });

  it('other clients are not affected', async () => {
    await freshWindow(limited);
    for (let i = 0; i < 5; i++) await read(web.runtime, limited.key);
    expect((await read(web.runtime, limited.key)).statusCode).toBe(429);
    await freshWindow(neighbour);
    const others = await Promise.all([read(web.runtime, web.apiKey), write(web.runtime, web.apiKey), read(web.runtime, plain.key), read(web.runtime, neighbour.key)]);
    expect(others.map((res) => res.statusCode)).toEqual([404, 202, 404, 404]);
    expect(others[3]!.headers['x-ratelimit-remaining']).toBe('4'); // its own budget, untouched by its neighbour's
  });

  it('reads and writes spend one budget', async () => {
    await freshWindow(limited);
    const spent = [await write(web.runtime, limited.key), await write(web.runtime, limited.key), await write(web.runtime, limited.key), await read(web.runtime, limited.key), await read(web.runtime, limited.key)];
    expect(spent.map((res) => res.statusCode)).toEqual([202, 202, 202, 404, 404]);
    expect((await read(web.runtime, limited.key)).statusCode).toBe(429);
  });

  it('the budget is shared by every web process (one counter in Redis)', async () => {
    await freshWindow(limited);
    const spent = [
      await read(web.runtime, limited.key),
      await read(second, limited.key),
      await read(web.runtime, limited.key),
      await read(second, limited.key),
      await read(web.runtime, limited.key),
    ];
    expect(spent.map((res) => res.statusCode)).toEqual([404, 404, 404, 404, 404]);
    expect((await read(second, limited.key)).statusCode).toBe(429);
    expect((await read(web.runtime, limited.key)).statusCode).toBe(429);
  });

  it('a client without a rate of its own gets RATE_LIMIT_PER_SECOND', async () => {
    await freshWindow(plain);
    const spent = [await read(second, plain.key), await read(second, plain.key), await read(second, plain.key)];
    expect(spent.map((res) => res.statusCode)).toEqual([404, 404, 404]);
    const over = await read(second, plain.key);
    expect(over.statusCode).toBe(429);
    expect(over.json().message).toBe('This API key may make 3 requests per second; retry in 1 second');
  });
});

describe('a fast client', () => {
  let fast: CreatedClient; // 1,000 a second: leases of 10

  beforeAll(async () => {
    fast = await createApiClient(web.database.db, new IdGenerator(8), 'fast app', { ratePerSecond: 1000 });
  });

  const counter = () => `${web.config.cachePrefix}:ratelimit:${fast.id}`;

  it('takes its budget from Redis in leases of 1% of its rate, one round trip each', async () => {
    await freshWindow(fast);
    const first = await read(web.runtime, fast.key);
    expect(first.headers['x-ratelimit-remaining']).toBe('999');
    expect(await redis.get(counter())).toBe('10'); // ten tokens leased by this process
    const remaining = [];
    for (let i = 0; i < 9; i++) remaining.push((await read(web.runtime, fast.key)).headers['x-ratelimit-remaining']);
    expect(remaining).toEqual(['998', '997', '996', '995', '994', '993', '992', '991', '990']);
    expect(await redis.get(counter())).toBe('10'); // spent in memory
    const eleventh = await read(web.runtime, fast.key);
    expect(eleventh.statusCode).toBe(404);
    expect(eleventh.headers['x-ratelimit-remaining']).toBe('989');
    expect(await redis.get(counter())).toBe('20');
  });

  it('never passes its rate: a lease grants only what the shared counter holds below it, in any process', async () => {
    await freshWindow(fast);
    await redis.set(counter(), '995', 'PX', 5000); // other processes spent 995 of this window
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push((await read(web.runtime, fast.key)).statusCode);
    expect(answers).toEqual([404, 404, 404, 404, 404, 429, 429]);
    expect((await read(second, fast.key)).statusCode).toBe(429);
    await redis.del(counter());
  });
});

describe('over a socket', () => {
  it('Retry-After says when to come back, and then the client is let through', async () => {
    await web.runtime.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = web.runtime.app.server.address() as { port: number };
    const get = () => fetch(`http://127.0.0.1:${port}/v1/orders/1`, { headers: { authorization: `Bearer ${limited.key}` } });
    await freshWindow(limited);
    let res = await get();
    for (let i = 0; i < 10 && res.status !== 429; i++) res = await get();
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBe(1);
    expect(await res.json()).toMatchObject({ code: 'RATE_LIMITED' });
    const limitedAt = performance.now();
    // Not a wait for a condition: this is the client doing what Retry-After tells it.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    expect((await get()).status).toBe(404);
    expect(performance.now() - limitedAt).toBeGreaterThanOrEqual(retryAfter * 1000);
  });
});

describe('with Redis away', () => {
  let proxied: TestWeb | undefined;
  let proxy: TcpProxy | undefined;

  afterEach(async () => {
    proxy?.thaw();
    await proxied?.close();
    await proxy?.close();
  });

  async function failOpen(w: TestWeb): Promise<number> {
    const text = (await w.runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^courier_rate_limit_fail_open_total\{process="web"\} (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  }

  it('silent or gone, orders are still taken (fail open, counted), each check costing at most RATE_LIMIT_TIMEOUT_MS', async () => {
    const redisPort = Number(new URL(TEST_REDIS_URL).port || 6379);
    proxy = await TcpProxy.start('127.0.0.1', redisPort);
    const p = proxy;
    proxied = await createTestWeb({ rateLimitTimeoutMs: 100, redisTimeoutMs: 300 }, { routeRedisUrl: (url) => url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${p.port}`) });
    const w = proxied;
    const strict = await createApiClient(w.database.db, new IdGenerator(9), 'strict', { ratePerSecond: 1 });
    // The limiter works while Redis answers: this second's one request was made elsewhere (a window
    // that lasts a minute, so no stall of a loaded machine can open a new one under the test). On a
    // loaded machine the first check can outlast its 100 ms and fail open (two 202s in a full suite
    // run), so the client writes until a check answers; from then on every failed-open one counts.
    await redis.set(`${w.config.cachePrefix}:ratelimit:${strict.id}`, '1', 'PX', 60_000);
    await vi.waitFor(async () => expect((await write(w.runtime, strict.key)).statusCode).toBe(429), { timeout: 10_000, interval: 50 });
    const openBefore = await failOpen(w);

    p.freeze(); // Redis accepts bytes and never answers
    const started = performance.now();
    const silent = [await write(w.runtime, strict.key), await write(w.runtime, strict.key), await write(w.runtime, strict.key)];
    expect(silent.map((res) => res.statusCode)).toEqual([202, 202, 202]);
    expect((performance.now() - started) / 3).toBeLessThan(100 + 400); // the check's bound, and slack for a loaded machine
    expect(await failOpen(w)).toBe(openBefore + 3);

    await p.close(); // gone: connections refused
    const gone = [await write(w.runtime, strict.key), await write(w.runtime, strict.key)];
    expect(gone.map((res) => res.statusCode)).toEqual([202, 202]);
    expect(await failOpen(w)).toBe(openBefore + 5);
    const ids = gone.map((res) => res.json().id as string);
    expect(await w.database.db('orders').whereIn('id', ids).pluck('status')).toEqual(['CREATED', 'CREATED']);
    proxy = undefined;
  });
});
