import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy, closedPort } from './support/tcp-proxy.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

const DB_TIMEOUT_MS = 500;
// The answer must come within the configured bound; the slack covers a loaded CI machine.
const ANSWER_BOUND_MS = DB_TIMEOUT_MS * 3 + 1500;

let web: TestWeb | undefined;
let proxy: TcpProxy | undefined;

afterEach(async () => {
  proxy?.thaw();
  await web?.close();
  await proxy?.close();
  web = undefined;
  proxy = undefined;
});

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work;
  return [result, performance.now() - started];
}

function postOrder(w: TestWeb, key: string) {
  return w.runtime.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers: { authorization: `Bearer ${w.apiKey}`, 'idempotency-key': key, 'content-type': 'application/json' },
    payload: orderBody(),
  });
}

async function rowCount(w: TestWeb): Promise<number> {
  const [{ n }] = (await w.database.db('orders').count({ n: '*' })) as [{ n: number | string }];
  return Number(n);
}

describe('MySQL unreachable', () => {
  it('refused connections: 503 DB_UNAVAILABLE within the bound, nothing written', async () => {
    const port = await closedPort();
    web = await createTestWeb({ dbTimeoutMs: DB_TIMEOUT_MS }, {
      routeMysqlUrl: (url) => url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`),
    });
    const [res, ms] = await timed(postOrder(web, 'refused-1'));
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'DB_UNAVAILABLE', message: expect.any(String) });
    expect(ms).toBeLessThan(ANSWER_BOUND_MS);
    expect(await rowCount(web)).toBe(0);
  });

  it('a MySQL that goes silent mid-run: 503 within the bound, the abandoned batch rolled back, then recovery', async () => {
    const realPort = Number(new URL(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/x').port || 3306);
    proxy = await TcpProxy.start('127.0.0.1', realPort);
    const p = proxy;
    web = await createTestWeb({ dbTimeoutMs: DB_TIMEOUT_MS }, {
      routeMysqlUrl: (url) => url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${p.port}`),
    });
    const w = web;

    const warm = await postOrder(w, 'before-the-fault');
    expect(warm.statusCode).toBe(202);
    expect(await rowCount(w)).toBe(1);

    p.freeze();
    const [answers, ms] = await timed(Promise.all([postOrder(w, 'during-1'), postOrder(w, 'during-2'), postOrder(w, 'during-3')]));
    expect(answers.map((r) => r.statusCode)).toEqual([503, 503, 503]);
    expect(answers.every((r) => r.json().code === 'DB_UNAVAILABLE')).toBe(true);
    expect(ms).toBeLessThan(ANSWER_BOUND_MS);

    const read = await w.runtime.app.inject({
      method: 'GET',
      url: `/v1/orders/${warm.json().id}`,
      headers: { authorization: `Bearer ${w.apiKey}` },
    });
    expect(read.statusCode).toBe(503);
    expect(read.json().code).toBe('DB_UNAVAILABLE');
    const ready = await w.runtime.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ code: 'DB_UNAVAILABLE', mysql: 'down' });

    // MySQL answers again: the statements held in flight now reach it, and must roll back.
    p.thaw();
    await w.runtime.intake.idle(); // includes the abandoned writes settling
    const keys = await w.database.db('orders').pluck('idempotency_key');
    expect(keys).toEqual(['before-the-fault']);

    // The client retries with the same key and the intake takes the order now.
    const retry = await postOrder(w, 'during-1');
    expect(retry.statusCode).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await rowCount(w)).toBe(2);
  });
});

describe('Redis unreachable', () => {
  it('orders are still accepted into MySQL (the outbox) and the failed enqueue is counted', async () => {
    const port = await closedPort();
    web = await createTestWeb({ redisUrl: `redis://127.0.0.1:${port}`, redisTimeoutMs: 300 });
    const [res, ms] = await timed(postOrder(web, 'no-redis-1'));
    expect(res.statusCode).toBe(202);
    expect(ms).toBeLessThan(ANSWER_BOUND_MS);
    const row = await web.database.db('orders').where({ id: res.json().id }).first();
    expect(row.status).toBe('CREATED');
    await web.runtime.intake.idle();
    const failures = await web.runtime.metrics.enqueueFailures.get();
    expect(failures.values[0]?.value).toBe(1);
    const ready = await web.runtime.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'degraded', mysql: 'up', redis: 'down' });
  });
});
