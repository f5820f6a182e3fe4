import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApiClient } from '../shared/clients/create-client.ts';
import { revokeApiClient } from '../shared/clients/revoke-client.ts';
import { setClientRate } from '../shared/clients/set-client-rate.ts';
import { IdGenerator } from '../shared/ids.ts';
import { runScript } from './support/child-process.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

/** The operators' key commands (client:create --rate, client:list, client:limit, client:revoke), as processes, and their effect on a web. */

let database: TestDatabase;
let env: Record<string, string>;
const queuePrefix = uniqueQueuePrefix();

beforeAll(async () => {
  database = await createTestDatabase();
  env = {
    MYSQL_URL: database.mysqlUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    CACHE_PREFIX: queuePrefix.slice(1, -1),
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_SECOND: '250',
  };
});

afterAll(async () => {
  await database?.drop();
  await deleteKeysWithPrefix(queuePrefix);
});

async function cli(...args: string[]): Promise<{ code: number | null; output: string; lines: string[] }> {
  const child = runScript('workers/cli.ts', args, env);
  const { code } = await child.exited;
  const output = child.output();
  return { code, output, lines: output.trim().split('\n') };
}

const client = (name: string) => database.db('api_clients').where({ name }).first();
const count = async () => Number(((await database.db('api_clients').count({ n: '*' })) as [{ n: number }])[0].n);

describe('client:create --rate, client:list', () => {
  it('creates clients with and without a rate of their own; the key alone on the last line', async () => {
    const made = await cli('client:create', 'Noodle House app', '--rate', '40');
    expect(made.code, made.output).toBe(0);
    expect(made.lines.at(-1)).toMatch(/^ck_[A-Za-z0-9_-]{43}$/);
    expect(made.lines.at(-2)).toMatch(/^created API client "Noodle House app" \(id \d+, rate 40\/s\)\. Its key is shown only now:$/);
    expect((await client('Noodle House app')).rate_per_second).toBe(40);

    const plain = await cli('client:create', 'Soup Stop');
    expect(plain.code, plain.output).toBe(0);
    expect(plain.lines.at(-2)).toContain('rate 250/s (default)');
    expect((await client('Soup Stop')).rate_per_second).toBeNull();
  });

  it('a bad --rate is refused and creates nothing', async () => {
    const before = await count();
    for (const rate of ['0', '1.5']) {
      const res = await cli('client:create', 'Bad Rate', '--rate', rate);
      expect(res.code, rate).not.toBe(0);
      expect(res.output, rate).toContain('must be a whole number of requests per second from 1 to 1000000');
    }
    expect(await count()).toBe(before);
  });

  it('client:list shows name, key prefix, created, last used, rate and revoked; --json the same as data', async () => {
    await database.db('api_clients').where({ name: 'Soup Stop' }).update({ last_used_at: new Date('2026-12-01T08:30:00Z') });
    const listed = await cli('client:list');
    expect(listed.code, listed.output).toBe(0);
    expect(listed.lines[0]).toMatch(/^name\s+key prefix\s+created\s+last used\s+rate\s+revoked$/);
    const noodle = listed.lines.find((line) => line.startsWith('Noodle House app'))!;
    const soup = listed.lines.find((line) => line.startsWith('Soup Stop'))!;
    const noodleRow = await client('Noodle House app');
    expect(noodle).toMatch(new RegExp(`^Noodle House app\\s+${noodleRow.key_prefix}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+-\\s+40/s\\s+-$`));
    expect(soup).toMatch(/\s2026-12-01 08:30:00Z\s+250\/s \(default\)\s+-$/);

    const json = await cli('client:list', '--json');
    const clients = JSON.parse(json.output) as Record<string, unknown>[];
    expect(clients.find((c) => c.name === 'Soup Stop')).toMatchObject({
      keyPrefix: expect.stringMatching(/^ck_/),
      lastUsedAt: '2026-12-01T08:30:00.000Z',
      ratePerSecond: null,
      defaultRatePerSecond: 250,
      revokedAt: null,
    });
    expect(JSON.stringify(clients)).not.toContain('key_hash');
  });
});

describe('client:limit', () => {
  it('sets a rate by name, and back to the default by key prefix', async () => {
    const set = await cli('client:limit', 'Soup Stop', '75');
    expect(set.code, set.output).toBe(0);
    expect(set.output).toMatch(/API client "Soup Stop" \(ck_.{7}\) now has the rate 75\/s, in effect within 30 s/);
    expect((await client('Soup Stop')).rate_per_second).toBe(75);
    const prefix = (await client('Soup Stop')).key_prefix as string;
    const reset = await cli('client:limit', prefix, 'default');
    expect(reset.code, reset.output).toBe(0);
    expect(reset.output).toContain('now has the rate 250/s (default)');
    expect((await client('Soup Stop')).rate_per_second).toBeNull();
  });

  it('an unknown client, a name two clients share, a bad rate: a coded error, nothing changed', async () => {
    await createApiClient(database.db, new IdGenerator(1), 'Twin');
    await createApiClient(database.db, new IdGenerator(2), 'Twin');
    const unknown = await cli('client:limit', 'Nobody', '5');
    expect(unknown.code).toBe(1);
    expect(unknown.output).toMatch(/^client:limit: CLIENT_NOT_FOUND: no API client is named "Nobody"/m);
    const twins = await cli('client:limit', 'Twin', '5');
    expect(twins.code).toBe(1);
    expect(twins.output).toMatch(/^client:limit: CLIENT_AMBIGUOUS: 2 API clients answer to "Twin" \(key prefixes ck_.{7}, ck_.{7}\)/m);
    const bad = await cli('client:limit', 'Soup Stop', 'fast');
    expect(bad.code).not.toBe(0);
    expect(bad.output).toContain('or "default"');
    const rows = await database.db('api_clients').whereIn('name', ['Twin', 'Soup Stop']).pluck('rate_per_second');
    expect(rows).toEqual([null, null, null]);
  });
});

describe('client:revoke', () => {
  it('revokes by key prefix; a second time says so; an unknown client is a coded error', async () => {
    const prefix = (await client('Noodle House app')).key_prefix as string;
    const revoked = await cli('client:revoke', prefix);
    expect(revoked.code, revoked.output).toBe(0);
    expect(revoked.output).toMatch(/revoked API client "Noodle House app" \(ck_.{7}\) at \d{4}-.*Z: its key is refused within 30 s/);
    const revokedAt = (await client('Noodle House app')).revoked_at as Date;
    expect(revokedAt).toBeInstanceOf(Date);

    const again = await cli('client:revoke', 'Noodle House app');
    expect(again.code).toBe(0);
    expect(again.output).toContain('was already revoked at');
    expect((await client('Noodle House app')).revoked_at).toEqual(revokedAt);

    const listed = await cli('client:list');
    expect(listed.lines.find((line) => line.startsWith('Noodle House app'))).toMatch(/40\/s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);

    const unknown = await cli('client:revoke', 'ck_nothere');
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('client:revoke: CLIENT_NOT_FOUND');
  });
});

describe('on a running web (AUTH_CACHE_TTL_SECONDS=1)', () => {
  let web: TestWeb;

  beforeAll(async () => {
    web = await createTestWeb({ authCacheTtlSeconds: 1 });
  });

  afterAll(async () => {
    await web?.close();
  });

  const read = (apiKey: string) => web.runtime.app.inject({ method: 'GET', url: '/v1/orders/1', headers: { authorization: `Bearer ${apiKey}` } });

  /** Polls until the answer satisfies the check, within the bound; returns how long it took. */
  async function until(check: () => Promise<boolean>, boundMs: number): Promise<number> {
    const started = performance.now();
    while (!(await check())) {
      if (performance.now() - started > boundMs) throw new Error(`not within ${boundMs} ms`);
      await sleep(50); // poll
    }
    return performance.now() - started;
  }

  it('a revoked key is refused (401) within the TTL; other keys go on', async () => {
    const made = await createApiClient(web.database.db, new IdGenerator(3), 'Soon Gone');
    expect((await read(made.key)).statusCode).toBe(404); // authenticated: the order just is not there
    await revokeApiClient(web.database.db, 'Soon Gone');
    await until(async () => (await read(made.key)).statusCode === 401, 1000 + 3000);
    expect((await read(made.key)).json()).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await read(web.apiKey)).statusCode).toBe(404);
  });

  it("a client's new rate applies within the TTL", async () => {
    const made = await createApiClient(web.database.db, new IdGenerator(4), 'Gets Limited');
    expect((await read(made.key)).headers['x-ratelimit-limit']).toBe(String(web.config.rateLimitPerSecond));
    await setClientRate(web.database.db, 'Gets Limited', 3);
    await until(async () => (await read(made.key)).headers['x-ratelimit-limit'] === '3', 1000 + 3000);
  });

  it('last used costs no write per request: it is written once, when the process writes what it saw', async () => {
    const made = await createApiClient(web.database.db, new IdGenerator(5), 'Busy');
    await web.runtime.lastUsed.stop(); // no timed write in the middle of the count: this test writes by hand
    const before = Date.now();
    for (let i = 0; i < 20; i++) expect((await read(made.key)).statusCode).toBe(404);
    const lastUsed = async () => (await web.database.db('api_clients').where({ id: made.id }).first()).last_used_at as Date | null;
    expect(await lastUsed()).toBeNull(); // twenty requests, no write
    expect(await web.runtime.lastUsed.flush()).toBeGreaterThanOrEqual(1); // one UPDATE for every key seen
    const written = await lastUsed();
    expect(written!.getTime()).toBeGreaterThanOrEqual(before - 5);
    expect(written!.getTime()).toBeLessThanOrEqual(Date.now());
    expect(await web.runtime.lastUsed.flush()).toBe(0); // nothing new seen: nothing written
  });
});
