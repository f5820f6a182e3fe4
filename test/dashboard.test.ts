import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let open: TestWeb;
let locked: TestWeb;

beforeAll(async () => {
  [open, locked] = await Promise.all([createTestWeb(), createTestWeb({ dashboardPassword: 's3cret-dashboard' })]);
});

afterAll(async () => {
  await Promise.all([open?.close(), locked?.close()]);
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('the queue dashboard at /admin/queues', () => {
  it('is served, with the queues, when no password is set', async () => {
    const page = await open.runtime.app.inject({ method: 'GET', url: '/admin/queues' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<!DOCTYPE html>/i);
    const api = await open.runtime.app.inject({ method: 'GET', url: '/admin/queues/api/queues' });
    expect(api.statusCode).toBe(200);
    expect(api.json().queues.map((q: { name: string }) => q.name).sort()).toEqual(['dispatch', 'maintenance', 'notifications', 'orders']);
  });

  it('asks for basic auth when DASHBOARD_PASSWORD is set, and lets the admin in', async () => {
    for (const authorization of [undefined, basic('admin', 'wrong'), basic('root', 's3cret-dashboard')]) {
      const res = await locked.runtime.app.inject({
        method: 'GET',
        url: '/admin/queues/api/queues',
        headers: authorization ? { authorization } : {},
      });
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().code, res.body).toBe('UNAUTHORIZED');
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="Courier queues"/);
    }
    const ok = await locked.runtime.app.inject({
      method: 'GET',
      url: '/admin/queues/api/queues',
      headers: { authorization: basic('admin', 's3cret-dashboard') },
    });
    expect(ok.statusCode).toBe(200);
  });

  it('does not put the API behind the dashboard password', async () => {
    const res = await locked.runtime.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
  });
});
