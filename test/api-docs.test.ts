import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../shared/errors/index.ts';
import { readOrder } from '../shared/orders/read-order.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

/** The OpenAPI 3 document, written from the route schemas, at /docs/json, with its UI at /docs. */

let web: TestWeb;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let doc: any;

beforeAll(async () => {
  web = await createTestWeb();
  const res = await web.runtime.app.inject({ method: 'GET', url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});

afterAll(async () => {
  await web?.close();
});

describe('/docs/json', () => {
  it('is an OpenAPI 3 document of the API, with the key as a bearer scheme', () => {
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.info).toMatchObject({ title: 'Courier API', version: expect.stringMatching(/^\d+\.\d+\.\d+$/) });
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths).sort()).toEqual(['/healthz', '/metrics', '/readyz', '/v1/orders', '/v1/orders/{id}', '/v1/orders/{id}/events', '/v1/orders/{id}/tracking']);
  });

  it('POST /v1/orders: its headers, its body with bounds and descriptions, every answer with its headers', () => {
    const op = doc.paths['/v1/orders'].post;
    expect(op.security).toEqual([{ apiKey: [] }]);
    const params = Object.fromEntries(op.parameters.map((p: { name: string; in: string; required?: boolean }) => [p.name, p]));
    expect(params['idempotency-key']).toMatchObject({ in: 'header', required: true });
    expect(params['x-request-id']).toMatchObject({ in: 'header', required: false });
    const body = op.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['merchantId', 'dropoff', 'items']);
    expect(body.properties.dropoff.properties.lat).toMatchObject({ minimum: -90, maximum: 90 });
    expect(body.properties.dropoff.properties.phone.description).toMatch(/^a phone number/);
    expect(Object.keys(op.responses).sort()).toEqual(['202', '400', '401', '404', '413', '422', '429', '500', '503']);
    const accepted = op.responses['202'];
    expect(Object.keys(accepted.content['application/json'].schema.properties)).toEqual(['id', 'status']);
    expect(Object.keys(accepted.headers)).toEqual(expect.arrayContaining(['X-Request-Id', 'Idempotent-Replayed', 'X-RateLimit-Limit', 'X-RateLimit-Remaining']));
    expect(op.responses['429'].headers).toHaveProperty('Retry-After');
    expect(op.responses['503'].headers).toHaveProperty('Retry-After');
    expect(op.responses['400'].headers).not.toHaveProperty('Retry-After');
  });

  it('each error answer lists the codes of its status, from the one registry; the error body enumerates them all', () => {
    for (const [path, method] of [['/v1/orders', 'post'], ['/v1/orders/{id}', 'get'], ['/v1/orders/{id}/events', 'post']] as const) {
      for (const [status, response] of Object.entries(doc.paths[path][method].responses) as [string, { description: string }][]) {
        if (Number(status) < 400) continue;
        const codes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => ERROR_CODES[code].status === Number(status));
        expect(response.description, `${method} ${path} ${status}`).toBe(codes.join(', '));
      }
    }
    const schema = doc.paths['/v1/orders'].post.responses['400'].content['application/json'].schema;
    expect(schema.required).toEqual(['code', 'message']);
    expect(schema.properties.code.enum.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it("the description has the table of every code with its status and meaning", () => {
    for (const [code, { status, message }] of Object.entries(ERROR_CODES)) {
      expect(doc.info.description).toContain(`| ${status} | \`${code}\` | ${message}`);
    }
  });

  it('the event route lists the allowed event types; reads describe the order view and ETag', () => {
    const events = doc.paths['/v1/orders/{id}/events'].post;
    expect(events.requestBody.content['application/json'].schema.properties.type.enum).toEqual(['picked_up', 'delivered', 'cancel']);
    expect(events.responses).toHaveProperty('409');
    const read = doc.paths['/v1/orders/{id}'].get;
    expect(read.responses['200'].headers).toHaveProperty('ETag');
    expect(Object.keys(read.responses['200'].content['application/json'].schema.properties)).toEqual(
      expect.arrayContaining(['id', 'status', 'version', 'riderId', 'dropoff', 'items', 'createdAt']),
    );
    expect(read.responses).toHaveProperty('304');
  });

  it('leaves out what is not the API (the queue dashboard, the docs themselves)', () => {
    expect(JSON.stringify(Object.keys(doc.paths))).not.toMatch(/admin|docs/);
  });
});

describe('/docs', () => {
  it('serves Swagger UI, pointing at the document', async () => {
    const page = await web.runtime.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('swagger-ui');
    const init = await web.runtime.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    expect(init.body).toMatch(/\.\/json|\/docs\/json/);
  });

  it('needs no API key and is not rate-limited', async () => {
    const res = await web.runtime.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
  });
});

describe('the answers match the document (the schemas serialize them)', () => {
  it('an order read is the whole order view, as documented; an error keeps its extra fields', async () => {
    const id = await web.postOrder();
    const read = await web.runtime.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: { authorization: `Bearer ${web.apiKey}` } });
    // Nothing the reader gives is dropped by the serializer, and the document names every field.
    const view = JSON.parse(JSON.stringify((await readOrder(web.database.db, id))!.order)) as Record<string, unknown>;
    expect(read.json()).toEqual(view);
    const documented = Object.keys(doc.paths['/v1/orders/{id}'].get.responses['200'].content['application/json'].schema.properties);
    expect(documented.sort()).toEqual(Object.keys(view).sort());
    const cancel = () =>
      web.runtime.app.inject({
        method: 'POST',
        url: `/v1/orders/${id}/events`,
        headers: { authorization: `Bearer ${web.apiKey}`, 'content-type': 'application/json' },
        payload: { type: 'cancel' },
      });
    expect((await cancel()).statusCode).toBe(200);
    const illegal = await cancel();
    expect(illegal.statusCode).toBe(409);
    expect(illegal.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 'CANCELLED', version: 2 });
  });
});
