import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loggerOptions } from '../shared/logger.ts';
import { readRequestIds } from '../shared/orders/request-ids.ts';
import { cliLogger } from '../workers/cli/session.ts';
import { createTestWeb, orderBody, type TestWeb } from './support/test-web.ts';

/** Request ids (X-Request-Id in, out, on log lines and stored with the order) and what never reaches a log line. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let web: TestWeb;
const lines: string[] = [];
// The web's own logger options (redaction, error scrubbing), writing into this array.
const logger = pino(loggerOptions({ logLevel: 'info' }, 'web'), { write: (line: string) => void lines.push(line) });
let keyCounter = 0;

beforeAll(async () => {
  web = await createTestWeb({}, { logger });
});

afterAll(async () => {
  await web?.close();
});

function post(body: unknown, headers: Record<string, string> = {}) {
  return web.runtime.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers: { authorization: `Bearer ${web.apiKey}`, 'idempotency-key': `edge-${++keyCounter}-${Date.now()}`, 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(body),
  });
}

async function storedRequestId(orderId: string): Promise<string | null> {
  return (await web.database.db('orders').select('request_id').where({ id: orderId }).first()).request_id;
}

describe('X-Request-Id', () => {
  it("a good one is the request's id: answered back and stored with the order, in the same INSERT", async () => {
    const res = await post(orderBody(), { 'x-request-id': 'merchant-app-7f3a:trace=01HZX' });
    expect(res.statusCode).toBe(202);
    expect(res.headers['x-request-id']).toBe('merchant-app-7f3a:trace=01HZX');
    expect(await storedRequestId(res.json().id)).toBe('merchant-app-7f3a:trace=01HZX');
  });

  it('none: the web makes one (a UUID), answers it and stores it', async () => {
    const res = await post(orderBody());
    expect(res.statusCode).toBe(202);
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(await storedRequestId(res.json().id)).toBe(res.headers['x-request-id']);
  });

  it('a bad one is replaced, not refused: the order is still taken, under a new id the answer names', async () => {
    for (const bad of ['has spaces in it', 'x'.repeat(129), 'semi;colon', 'quote"d']) {
      const res = await post(orderBody(), { 'x-request-id': bad });
      expect(res.statusCode, bad).toBe(202);
      expect(res.headers['x-request-id'], bad).toMatch(UUID);
      expect(await storedRequestId(res.json().id), bad).toBe(res.headers['x-request-id']);
    }
  });

  it('every answer carries it, errors included', async () => {
    const answers = await Promise.all([
      web.runtime.app.inject({ method: 'GET', url: '/v1/orders/1', headers: { 'x-request-id': 'r-401' } }),
      web.runtime.app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'r-404' } }),
      post({ merchantId: 'x' }, { 'x-request-id': 'r-400' }),
      web.runtime.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'r-200' } }),
    ]);
    expect(answers.map((res) => [res.statusCode, res.headers['x-request-id']])).toEqual([
      [401, 'r-401'],
      [404, 'r-404'],
      [400, 'r-400'],
      [200, 'r-200'],
    ]);
  });

  it('readRequestIds reads the ids of a set of orders in one query, leaving out orders without one', async () => {
    const a = (await post(orderBody(), { 'x-request-id': 'batch-a' })).json().id as string;
    const b = (await post(orderBody(), { 'x-request-id': 'batch-b' })).json().id as string;
    const old = (await post(orderBody())).json().id as string;
    await web.database.db('orders').where({ id: old }).update({ request_id: null }); // as an order from before the column
    const ids = await readRequestIds(web.database.db, [a, b, old, '999999999']);
    expect(Object.fromEntries(ids)).toEqual({ [a]: 'batch-a', [b]: 'batch-b' });
    expect((await readRequestIds(web.database.db, [])).size).toBe(0);
  });
});

describe('a MySQL error during the intake INSERT: logged with its request id, without the orders it carried', () => {
  const people = [1, 2, 3].map((n) => ({ phone: `+86139000${n}${n}${n}${n}${n}`, address: `${n}${n} Secret Garden Lane` }));

  async function postThreeAtOnce(tag: string) {
    lines.length = 0;
    return Promise.all(
      people.map((person, i) =>
        post(orderBody({ dropoff: { lat: 31.2, lng: 121.4, ...person } }), { 'x-request-id': `${tag}-${i}` }),
      ),
    );
  }

  function expectNoPeople(text: string): void {
    for (const person of people) {
      expect(text).not.toContain(person.phone);
      expect(text).not.toContain(person.phone.slice(1)); // without its +
      expect(text).not.toContain(person.address);
    }
  }

  it("a column too short for the data: 500 for each, and the log has the code and column, not one phone or address", async () => {
    await web.database.db('order_events').del(); // the rows of the tests before would not fit the narrower column
    await web.database.db('orders').del();
    await web.database.db.raw('ALTER TABLE orders MODIFY dropoff_phone VARCHAR(5) NOT NULL');
    try {
      const answers = await postThreeAtOnce('too-long');
      expect(answers.map((res) => res.statusCode)).toEqual([500, 500, 500]);
      expect(answers[0]!.json()).toEqual({ code: 'INTERNAL_ERROR', message: 'Something went wrong on our side' });
    } finally {
      await web.database.db.raw('ALTER TABLE orders MODIFY dropoff_phone VARCHAR(32) NOT NULL');
    }
    const logged = lines.join('');
    expectNoPeople(logged);
    const errors = lines.map((line) => JSON.parse(line) as { requestId?: string; err?: { code?: string; message?: string; sql?: unknown } });
    const failures = errors.filter((line) => line.err?.code === 'ER_DATA_TOO_LONG');
    // One line per request, each with its own request id, saying what failed and where.
    expect(failures.map((line) => line.requestId).sort()).toEqual(['too-long-0', 'too-long-1', 'too-long-2']);
    expect(failures[0]!.err!.message).toBe("Data too long for column 'dropoff_phone' at row 1");
    expect(failures[0]!.err!.sql).toBeUndefined();
  });

  it('a trigger that refuses the row quoting it (SIGNAL): its text is withheld', async () => {
    // The message quotes the row itself: the worst case for a log.
    await web.database.db.raw(`
      CREATE TRIGGER refuse_orders BEFORE INSERT ON orders FOR EACH ROW
      BEGIN
        DECLARE reason VARCHAR(255) DEFAULT CONCAT('no deliveries to ', NEW.dropoff_address, ', call ', NEW.dropoff_phone);
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = reason;
      END`);
    try {
      const answers = await postThreeAtOnce('signal');
      expect(answers.map((res) => res.statusCode)).toEqual([500, 500, 500]);
    } finally {
      await web.database.db.raw('DROP TRIGGER refuse_orders');
    }
    expectNoPeople(lines.join(''));
    const failures = lines.map((line) => JSON.parse(line)).filter((line) => line.err?.sqlState === '45000');
    expect(failures).toHaveLength(3);
    expect(failures[0].err.message).toBe('ER_SIGNAL_EXCEPTION: user-defined error (its text withheld)');
  });
});

describe('knex and MySQL errors that quote values', () => {
  it("a duplicate (the value in the server's message, the statement in knex's) and a syntax error (the statement after near): logged without them", async () => {
    const { db } = web.database;
    await db.raw('CREATE TABLE people (phone VARCHAR(32) NOT NULL UNIQUE, address VARCHAR(200) NOT NULL)');
    const person = { phone: '+8613911112222', address: '7 Hidden Court' };
    await db('people').insert(person);
    const errors: Error[] = [];
    await db('people').insert(person).catch((error: Error) => errors.push(error));
    await db.raw('SELECT FROM people WHERE phone = ? AND address = ?', [person.phone, person.address]).catch((error: Error) => errors.push(error));
    // What the errors carry, and what a log line would have shown before.
    expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['ER_DUP_ENTRY', 'ER_PARSE_ERROR']);
    expect(errors[0]!.message).toContain(person.phone);
    expect(errors[1]!.message).toContain(person.address);

    lines.length = 0;
    for (const error of errors) logger.error({ err: error }, 'a query failed');
    const logged = lines.join('');
    expect(logged).not.toContain(person.phone.slice(1));
    expect(logged).not.toContain('Hidden Court');
    const [duplicate, syntax] = lines.map((line) => JSON.parse(line).err);
    expect(duplicate).toMatchObject({ code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', message: "Duplicate entry '?' for key 'phone'" });
    expect(syntax.message).toMatch(/^You have an error in your SQL syntax; .* near '\?' at line 1$/);
    // The callers' errors are untouched (the code that handles them still reads them).
    expect(errors[0]!.message).toContain(person.phone);
  });
});

describe('redaction of what the app logs', () => {
  it('API keys, phones and addresses are redacted wherever a line puts them', () => {
    const captured: string[] = [];
    const logger = pino(loggerOptions({ logLevel: 'info' }, 'web'), { write: (line: string) => void captured.push(line) });
    logger.info({ req: { headers: { authorization: 'Bearer ck_secret-key' } }, headers: { authorization: 'Bearer ck_secret-key' } }, 'a request');
    logger.info({ order: { dropoff: { phone: '+8613700001111', address: '9 Hidden St', lat: 1 } } }, 'an order');
    logger.info({ rows: [{ id: '1', dropoff_phone: '+8613700001111', dropoff_address: '9 Hidden St' }] }, 'rows');
    logger.info({ dropoff: { phone: '+8613700001111', address: '9 Hidden St' } }, 'a body');
    const text = captured.join('');
    expect(text).not.toContain('ck_secret-key');
    expect(text).not.toContain('8613700001111');
    expect(text).not.toContain('Hidden St');
    expect(JSON.parse(captured[1]!).order.dropoff).toEqual({ phone: '[redacted]', address: '[redacted]', lat: 1 });
  });
});

describe("the operator CLI's logger", () => {
  it("redacts and scrubs as the processes' loggers do", async () => {
    const captured: string[] = [];
    const logger = cliLogger({ logLevel: 'info' }, { write: (line: string) => void captured.push(line) });
    const person = { phone: '+8613955556666', address: '12 Quiet Lane' };
    const dbError = await web.database.db
      .raw('SELECT FROM orders WHERE dropoff_phone = ? AND dropoff_address = ?', [person.phone, person.address])
      .catch((error: Error) => error);
    expect(String((dbError as Error).message)).toContain(person.phone);
    logger.warn({ err: dbError, order: { dropoff: person }, headers: { authorization: 'Bearer ck_cli-secret' } }, 'a command failed');
    logger.info({ note: 'below warn' }, 'not written: the CLI logs warnings and errors only');
    expect(captured).toHaveLength(1);
    const text = captured[0]!;
    expect(text).not.toContain('13955556666');
    expect(text).not.toContain('Quiet Lane');
    expect(text).not.toContain('ck_cli-secret');
    expect(JSON.parse(text)).toMatchObject({ name: 'cli', err: { code: 'ER_PARSE_ERROR' }, order: { dropoff: { phone: '[redacted]' } } });
  });
});
