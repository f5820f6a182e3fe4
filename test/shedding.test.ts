import { afterEach, describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { TcpProxy } from './support/tcp-proxy.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

/**
 * Load shedding over a real socket, under real concurrency: with MySQL gone silent, requests pile
 * up behind it; past each bound the web answers 503 OVERLOADED with Retry-After at once.
 */

let web: TestWeb | undefined;
let proxy: TcpProxy | undefined;

afterEach(async () => {
  proxy?.thaw();
  await web?.close();
  await proxy?.close();
  web = undefined;
  proxy = undefined;
});

const MYSQL_PORT = Number(new URL(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/x').port || 3306);
/** Shed answers come at once; the held requests wait for MySQL (DB_TIMEOUT_MS). The bound leaves room for a loaded machine. */
const AT_ONCE_MS = 1000;

async function webBehindProxy(overrides: Parameters<typeof createTestWeb>[0]): Promise<{ web: TestWeb; proxy: TcpProxy; base: string }> {
  const p = await TcpProxy.start('127.0.0.1', MYSQL_PORT);
  const w = await createTestWeb({ dbTimeoutMs: 5000, ...overrides }, { routeMysqlUrl: (url) => url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${p.port}`) });
  await w.runtime.app.listen({ port: 0, host: '127.0.0.1' });
  const address = w.runtime.app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return { web: w, proxy: p, base };
}

interface Answer {
  readonly status: number;
  readonly code?: string;
  readonly retryAfter: string | null;
  readonly ms: number;
}

async function timedFetch(url: string, init: RequestInit): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, init);
  const body = (await res.json().catch(() => ({}))) as { code?: string };
  return { status: res.status, code: body.code, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started };
}

async function metric(w: TestWeb, line: RegExp): Promise<number> {
  const text = (await w.runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
  const match = text.split('\n').find((l) => line.test(l));
  return match ? Number(match.split(' ').at(-1)) : Number.NaN;
}

/** Resolves once the condition holds, polling; throws past the bound. */
async function until(check: () => boolean | Promise<boolean>, boundMs: number, what: string): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > boundMs) throw new Error(`${what}: not within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // poll
  }
}

describe('HTTP_MAX_IN_FLIGHT', () => {
  it('past the bound, 503 OVERLOADED with Retry-After at once; probes and metrics still answer; then it recovers', async () => {
    const setup = await webBehindProxy({ httpMaxInFlight: 4, orderCache: 'off' });
    ({ web, proxy } = setup);
    const { web: w, proxy: p, base } = setup;
    const headers = { authorization: `Bearer ${w.apiKey}` };
    const orderId = await w.postOrder(); // the key and the merchant are cached now
    p.freeze();

    const held = Array.from({ length: 4 }, () => timedFetch(`${base}/v1/orders/${orderId}`, { headers }));
    await until(async () => (await metric(w, /^courier_http_requests_in_flight\{/)) === 4, 5000, 'four requests in flight');
    const shed = await Promise.all(Array.from({ length: 20 }, () => timedFetch(`${base}/v1/orders/${orderId}`, { headers })));
    expect(shed.map((a) => [a.status, a.code, a.retryAfter])).toEqual(Array(20).fill([503, 'OVERLOADED', '1']));
    expect(Math.max(...shed.map((a) => a.ms))).toBeLessThan(AT_ONCE_MS);
    // Writes meet the same bound (and nothing is written).
    const post = await timedFetch(`${base}/v1/orders`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': 'shed-write' },
      body: JSON.stringify(orderBody()),
    });
    expect([post.status, post.code, post.retryAfter]).toEqual([503, 'OVERLOADED', '1']);

    // Operators still see the process: probes and metrics are not behind the API's bound.
    expect((await timedFetch(`${base}/healthz`, {})).status).toBe(200);
    expect(await metric(w, /^courier_http_shed_requests_total\{bound="in_flight"/)).toBe(21);
    expect(await metric(w, /^courier_http_requests_in_flight_max\{/)).toBe(4);

    p.thaw();
    expect((await Promise.all(held)).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    await until(async () => (await metric(w, /^courier_http_requests_in_flight\{/)) === 0, 5000, 'nothing in flight');
    expect((await timedFetch(`${base}/v1/orders/${orderId}`, { headers })).status).toBe(200);
    expect(await w.database.db('orders').where({ idempotency_key: 'shed-write' }).first()).toBeUndefined();
  });

  it('a request whose client went away leaves the bound', async () => {
    const setup = await webBehindProxy({ httpMaxInFlight: 2, orderCache: 'off' });
    ({ web, proxy } = setup);
    const { web: w, proxy: p, base } = setup;
    const headers = { authorization: `Bearer ${w.apiKey}` };
    const orderId = await w.postOrder();
    p.freeze();
    const abort = new AbortController();
    const gone = [1, 2].map(() => fetch(`${base}/v1/orders/${orderId}`, { headers, signal: abort.signal }).catch(() => 'aborted'));
    await until(async () => (await metric(w, /^courier_http_requests_in_flight\{/)) === 2, 5000, 'two in flight');
    abort.abort();
    expect(await Promise.all(gone)).toEqual(['aborted', 'aborted']);
    await until(async () => (await metric(w, /^courier_http_requests_in_flight\{/)) === 0, 5000, 'the bound freed by the closed connections');
    p.thaw();
    expect((await timedFetch(`${base}/v1/orders/${orderId}`, { headers })).status).toBe(200);
  });
});

describe('INTAKE_MAX_PENDING', () => {
  it("past the intake's queue, orders are refused at once (503 OVERLOADED), never queued; the queued ones commit", async () => {
    // One batch of one order at a time: with MySQL silent, one order is being written, three wait, the rest are shed.
    const setup = await webBehindProxy({ intakeMaxPending: 3, intakeMaxInFlight: 1, intakeBatchMax: 1, intakeBatchWaitMs: 0 });
    ({ web, proxy } = setup);
    const { web: w, proxy: p, base } = setup;
    await w.postOrder();
    p.freeze();
    const post = (i: number) =>
      timedFetch(`${base}/v1/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${w.apiKey}`, 'content-type': 'application/json', 'idempotency-key': `pending-${i}` },
        body: JSON.stringify(orderBody()),
      });
    const answers = Array.from({ length: 10 }, (_, i) => post(i));
    // Six are answered while MySQL is still silent, at once.
    await until(async () => (await metric(w, /^courier_http_shed_requests_total\{bound="intake_pending"/)) === 6, 5000, 'six shed');
    expect(await metric(w, /^courier_intake_pending_orders\{/)).toBe(3);
    expect(await metric(w, /^courier_intake_pending_orders_max\{/)).toBe(3);
    p.thaw();
    const settled = await Promise.all(answers);
    const shed = settled.filter((a) => a.status === 503);
    expect(shed.map((a) => [a.code, a.retryAfter])).toEqual(Array(6).fill(['OVERLOADED', '1']));
    expect(Math.max(...shed.map((a) => a.ms))).toBeLessThan(AT_ONCE_MS);
    expect(settled.filter((a) => a.status === 202)).toHaveLength(4);
    // Exactly the four answered 202 are in MySQL.
    const keys = await w.database.db('orders').where('idempotency_key', 'like', 'pending-%').pluck('idempotency_key');
    expect(keys).toHaveLength(4);
    expect(await metric(w, /^courier_intake_orders_total\{outcome="shed"/)).toBe(6);
  });
});

describe('REQUEST_TIMEOUT_MS', () => {
  it('a request that outlasts it is answered 503 REQUEST_TIMEOUT with Retry-After at its bound, not when MySQL answers', async () => {
    // A bound shorter than the MySQL bound behind it, for the test only (the config refuses that order of bounds).
    const setup = await webBehindProxy({ requestTimeoutMs: 400, orderCache: 'off' });
    ({ web, proxy } = setup);
    const { web: w, proxy: p, base } = setup;
    const orderId = await w.postOrder();
    p.freeze();
    const answer = await timedFetch(`${base}/v1/orders/${orderId}`, { headers: { authorization: `Bearer ${w.apiKey}` } });
    expect([answer.status, answer.code, answer.retryAfter]).toEqual([503, 'REQUEST_TIMEOUT', '1']);
    expect(answer.ms).toBeGreaterThanOrEqual(400);
    expect(answer.ms).toBeLessThan(400 + AT_ONCE_MS); // not DB_TIMEOUT_MS (5 s)
    p.thaw();
    expect((await timedFetch(`${base}/v1/orders/${orderId}`, { headers: { authorization: `Bearer ${w.apiKey}` } })).status).toBe(200);
  });
});
