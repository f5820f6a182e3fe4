import { appRoutes } from '@bull-board/api/dist/routes.js';
import { Worker, type Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const OPERATOR = 'operator-secret-0001';
const VIEWER = 'viewer-secret-00002';
const HOST = 'courier.test:3000';
const OWN_ORIGIN = `http://${HOST}`;
const PHONE = '+86 138 0013 8000';
const ADDRESS = '88 Century Ave';

let off: TestWeb;
let on: TestWeb;
let orders: Queue;

beforeAll(async () => {
  [off, on] = await Promise.all([createTestWeb(), createTestWeb({ dashboardOperatorPassword: OPERATOR, dashboardViewerPassword: VIEWER })]);
  orders = on.runtime.producer.queue('orders');
});

afterAll(async () => {
  await Promise.all([off?.close(), on?.close()]);
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

type As = 'operator' | 'viewer' | { user: string; password: string } | undefined;

/** A request to the dashboard as a browser on its own page would send it (Origin on a change), unless told otherwise. */
function call(web: TestWeb, method: string, url: string, opts: { as?: As; headers?: Record<string, string>; payload?: object } = {}) {
  const as = opts.as === undefined ? undefined : typeof opts.as === 'string' ? { user: opts.as, password: opts.as === 'operator' ? OPERATOR : VIEWER } : opts.as;
  const safe = method === 'GET' || method === 'HEAD';
  return web.runtime.app.inject({
    method: method as 'GET',
    url,
    headers: {
      host: HOST,
      ...(as ? { authorization: basic(as.user, as.password) } : {}),
      ...(safe ? {} : { origin: OWN_ORIGIN }),
      ...opts.headers,
    },
    ...(opts.payload ? { payload: opts.payload } : {}),
  });
}

/** A job that ran and failed for good, kept in the failed set, with a log line: its reason and log say what the test gives. */
async function failedJob(jobId: string, data: object, reason: string, log = ''): Promise<void> {
  const worker = new Worker(
    orders.name,
    async (job) => {
      if (log) await job.log(log);
      throw new Error(reason);
    },
    { connection: { url: TEST_REDIS_URL }, prefix: on.config.queuePrefix },
  );
  try {
    const failed = new Promise<void>((resolve) => worker.on('failed', (job) => job?.id === jobId && resolve()));
    await orders.add('order.price', data, { jobId, attempts: 1 });
    await failed;
  } finally {
    await worker.close();
  }
  expect(await orders.getJobState(jobId)).toBe('failed');
}

describe('the queue dashboard at /admin/queues', () => {
  it('is off without a password: 404 DASHBOARD_DISABLED on every path and method, and nothing is done', async () => {
    await off.runtime.producer.queue('orders').add('orders.price', { orderIds: ['1'], attempt: 0 }, { jobId: 'kept' });
    for (const [method, url] of [
      ['GET', '/admin/queues'],
      ['GET', '/admin/queues/api/queues'],
      ['PUT', '/admin/queues/api/queues/orders/obliterate'],
      ['PUT', '/admin/queues/api/queues/orders/pause'],
    ] as const) {
      const res = await call(off, method, url, { as: { user: 'admin', password: '' } });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().code).toBe('DASHBOARD_DISABLED');
    }
    expect(await off.runtime.producer.queue('orders').getJobState('kept')).toBe('waiting');
    expect(await off.runtime.producer.queue('orders').isPaused()).toBe(false);
  });

  it('asks for basic auth; a wrong password, an unknown user, or the other role password is refused', async () => {
    for (const as of [
      undefined,
      { user: 'operator', password: 'wrong-password-000' },
      { user: 'root', password: OPERATOR },
      { user: 'operator', password: VIEWER },
      { user: 'viewer', password: OPERATOR },
    ]) {
      const res = await call(on, 'GET', '/admin/queues/api/queues', { as });
      expect(res.statusCode, JSON.stringify(as)).toBe(401);
      expect(res.json().code).toBe('UNAUTHORIZED');
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="Courier queues"/);
    }
    for (const as of ['operator', 'viewer', { user: 'admin', password: OPERATOR }] as const) {
      expect((await call(on, 'GET', '/admin/queues', { as })).statusCode).toBe(200);
      expect((await call(on, 'GET', '/admin/queues/api/queues', { as })).statusCode).toBe(200);
    }
    expect((await call(on, 'GET', '/healthz')).statusCode).toBe(200);
  });

  it('shows the viewer every queue read-only, and refuses every changing bull-board route with DASHBOARD_READ_ONLY, changing nothing', async () => {
    await failedJob('viewer-failed', { orderId: '11' }, 'boom');
    const res = await call(on, 'GET', '/admin/queues/api/queues', { as: 'viewer' });
    const queues = res.json().queues as { name: string; readOnlyMode: boolean; allowRetries: boolean }[];
    expect(queues.map((q) => q.name).sort()).toEqual(['dispatch', 'maintenance', 'notifications', 'orders']);
    for (const queue of queues) expect(queue).toMatchObject({ readOnlyMode: true, allowRetries: false });

    const changing = appRoutes.api.filter((route) => route.method !== 'get');
    expect(changing.length).toBeGreaterThan(20);
    for (const route of changing) {
      const url = `/admin/queues${route.route as string}`
        .replace(':queueName', 'orders')
        .replace(':jobId', 'viewer-failed')
        .replace(':queueStatus', 'failed')
        .replace(':schedulerId', 'none');
      const method = (route.method as string).toUpperCase();
      const answer = await call(on, method, url, { as: 'viewer', payload: {} });
      expect(answer.statusCode, `${method} ${url}`).toBe(403);
      expect(answer.json().code, `${method} ${url}`).toBe('DASHBOARD_READ_ONLY');
    }
    expect(await orders.getJobState('viewer-failed')).toBe('failed');
    expect(await orders.isPaused()).toBe(false);
  });

  it('lets the operator retry and remove failed jobs and promote delayed ones, and refuses anything else with DASHBOARD_ACTION_FORBIDDEN', async () => {
    await failedJob('op-failed-1', { orderId: '21' }, 'boom');
    await failedJob('op-failed-2', { orderId: '22' }, 'boom');
    await orders.add('orders.price', { orderIds: ['23'], attempt: 0 }, { jobId: 'op-delayed', delay: 3_600_000 });
    const listed = (await call(on, 'GET', '/admin/queues/api/queues', { as: 'operator' })).json().queues as { readOnlyMode: boolean; allowRetries: boolean }[];
    for (const queue of listed) expect(queue).toMatchObject({ readOnlyMode: false, allowRetries: true });

    for (const [method, url, payload] of [
      ['PUT', '/admin/queues/api/queues/orders/obliterate', {}],
      ['PUT', '/admin/queues/api/queues/orders/empty', undefined],
      ['PUT', '/admin/queues/api/queues/orders/pause', undefined],
      ['PUT', '/admin/queues/api/queues/pause', undefined],
      ['POST', '/admin/queues/api/queues/orders/add', { name: 'orders.price', data: { orderIds: ['9'], attempt: 0 } }],
      ['PUT', '/admin/queues/api/queues/orders/clean/delayed', undefined],
      ['PUT', '/admin/queues/api/queues/orders/retry/completed', undefined],
      ['PATCH', '/admin/queues/api/queues/orders/op-failed-1/update-data', { data: {} }],
      ['PUT', '/admin/queues/api/queues/orders/op-delayed/clean', undefined],
      ['PUT', '/admin/queues/api/queues/orders/op-delayed/retry', undefined],
    ] as const) {
      const res = await call(on, method, url, { as: 'operator', ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().code, `${method} ${url}`).toBe('DASHBOARD_ACTION_FORBIDDEN');
    }
    expect(await orders.getJobState('op-delayed')).toBe('delayed');
    expect(await orders.getJobState('op-failed-1')).toBe('failed');
    expect(await orders.isPaused()).toBe(false);

    expect((await call(on, 'PUT', '/admin/queues/api/queues/orders/op-failed-1/retry', { as: 'operator' })).statusCode).toBe(204);
    expect(await orders.getJobState('op-failed-1')).toBe('waiting');
    expect((await call(on, 'PUT', '/admin/queues/api/queues/orders/op-delayed/promote', { as: 'operator' })).statusCode).toBe(204);
    expect(await orders.getJobState('op-delayed')).toBe('waiting');
    expect((await call(on, 'PUT', '/admin/queues/api/queues/orders/op-failed-2/clean', { as: 'operator' })).statusCode).toBe(204);
    expect(await orders.getJob('op-failed-2')).toBeUndefined();
    // Every failed job at once (bull-board spares those of the last 5 s): allowed.
    expect((await call(on, 'PUT', '/admin/queues/api/queues/orders/clean/failed', { as: 'operator' })).statusCode).toBe(200);
  });

  it('refuses a change that does not come from the dashboard own page (Origin, else Referer), with CROSS_ORIGIN_REFUSED', async () => {
    await failedJob('origin-failed', { orderId: '31' }, 'boom');
    const retry = '/admin/queues/api/queues/orders/origin-failed/retry';
    for (const headers of [
      {},
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://evil-${HOST}` },
      { origin: 'http://courier.test:3001' },
      { referer: 'http://evil.example/admin/queues' },
      { origin: 'http://evil.example', referer: `${OWN_ORIGIN}/admin/queues` },
    ]) {
      const res = await on.runtime.app.inject({ method: 'PUT', url: retry, headers: { host: HOST, authorization: basic('operator', OPERATOR), ...headers } });
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(res.json().code).toBe('CROSS_ORIGIN_REFUSED');
    }
    expect(await orders.getJobState('origin-failed')).toBe('failed');
    const fromOwnPage = await on.runtime.app.inject({
      method: 'PUT',
      url: retry,
      headers: { host: HOST, authorization: basic('operator', OPERATOR), referer: `${OWN_ORIGIN}/admin/queues/queue/orders?status=failed` },
    });
    expect(fromOwnPage.statusCode).toBe(204);
    expect(await orders.getJobState('origin-failed')).toBe('waiting');
  });

  it('masks phones and addresses in job data, failure reasons, stack traces and logs, and keeps the order ids', async () => {
    const orderId = '382636929890876416';
    await failedJob(
      'legacy-with-pii',
      { orderId, dropoff: { lat: 31.2304, lng: 121.4737, address: ADDRESS, phone: PHONE }, note: 'ring twice' },
      `provider refused ${PHONE} for order ${orderId} at ${ADDRESS}`,
      `calling ${PHONE}`,
    );
    const pages = [
      await call(on, 'GET', '/admin/queues/api/queues?activeQueue=orders&status=failed&jobsPerPage=50', { as: 'viewer' }),
      await call(on, 'GET', '/admin/queues/api/queues/orders/legacy-with-pii', { as: 'viewer' }),
      await call(on, 'GET', '/admin/queues/api/queues/orders/legacy-with-pii/logs', { as: 'viewer' }),
    ];
    for (const page of pages) {
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toMatch(/138\D?0013\D?8000/);
      expect(page.body).not.toMatch(/Century/);
    }
    const job = pages[1]!.json().job;
    expect(job.failedReason).toBe(`provider refused [phone] for order ${orderId} at [address]`);
    expect(job.data).toMatchObject({ orderId, dropoff: '[masked]' });
    expect(job.stacktrace.join('\n')).toContain('[phone]');
    expect(pages[2]!.json()).toEqual([`calling [phone]`]);
  });

  it('titles each job with what its batch carried', async () => {
    const { producer } = on.runtime;
    await producer.add('orders.price', { orderIds: ['41', '42', '43'], attempt: 0 });
    await producer.add('dispatch.zone', { zoneId: 'pudong', window: Date.UTC(2026, 11, 1, 10, 0, 1) }, { delayMs: 3_600_000 });
    const title = async (queue: string, status: string) =>
      ((await call(on, 'GET', `/admin/queues/api/queues?activeQueue=${queue}&status=${status}&jobsPerPage=50`, { as: 'viewer' })).json().queues as {
        name: string;
        jobs: { name: string }[];
      }[])
        .find((q) => q.name === queue)!
        .jobs.map((job) => job.name);
    expect(await title('orders', 'waiting')).toContain('orders.price: 3 orders from 41, attempt 0');
    expect(await title('dispatch', 'delayed')).toContain('dispatch.zone: zone pudong, window 10:00:01.000Z');
  });
});
