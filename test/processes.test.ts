import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScript, type Child } from './support/child-process.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT, orderBody } from './support/test-web.ts';

let database: TestDatabase;
let env: Record<string, string>;
const children: Child[] = [];
const queuePrefix = uniqueQueuePrefix();
// The web enqueues a cache warm-up at start and the worker runs it: into this file's own cache keys.
const cachePrefix = queuePrefix.slice(1, -1);

function start(file: string, args: string[] = [], extraEnv: Record<string, string> = {}): Child {
  const child = runScript(file, args, { ...env, ...extraEnv });
  children.push(child);
  return child;
}

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db('merchants').insert(TEST_MERCHANT);
  env = {
    MYSQL_URL: database.mysqlUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    CACHE_PREFIX: cachePrefix,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  };
});

afterAll(async () => {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await database?.drop();
  await deleteKeysWithPrefix(queuePrefix);
  await deleteKeysWithPrefix(cachePrefix);
});

describe('entrypoints as processes', () => {
  it('a bad configuration value stops the process at start, naming the variable', async () => {
    const web = start('workers/web.ts', [], { PORT: 'eighty' });
    const { code } = await web.exited;
    expect(code).toBe(78);
    expect(web.output()).toMatch(/bad configuration: PORT: must be an integer/);
  });

  it('client:create prints the new key alone on its last line, and the web process accepts it over a real socket', async () => {
    const cli = start('workers/cli.ts', ['client:create', 'process test app']);
    const { code } = await cli.exited;
    expect(code).toBe(0);
    const lines = cli.output().trim().split('\n');
    const key = lines[lines.length - 1]!;
    expect(key).toMatch(/^ck_[A-Za-z0-9_-]{43}$/);
    const stored = await database.db('api_clients').where({ name: 'process test app' }).first();
    expect(stored.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(key);

    const web = start('workers/web.ts', [], { PORT: '0', HOST: '127.0.0.1' });
    const line = await web.waitForLine(/web listening/, 20_000);
    const base = /API (http:\/\/127\.0\.0\.1:\d+)\/v1\/orders/.exec(line)![1]!;

    const posted = await fetch(`${base}/v1/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'idempotency-key': 'socket-1', 'content-type': 'application/json' },
      body: JSON.stringify(orderBody()),
    });
    expect(posted.status).toBe(202);
    const { id } = (await posted.json()) as { id: string };
    const read = await fetch(`${base}/v1/orders/${id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id, status: 'CREATED' });
    const metrics = await fetch(`${base}/metrics`);
    expect(await metrics.text()).toMatch(/courier_intake_orders_total\{outcome="created",process="web"\} 1/);

    web.process.kill('SIGTERM');
    const exit = await web.exited;
    expect(exit.code).toBe(0);
    expect(web.output()).toMatch(/stopped cleanly/);
  });

  it('client:create --help explains itself; a missing name is an error', async () => {
    const help = start('workers/cli.ts', ['client:create', '--help']);
    expect((await help.exited).code).toBe(0);
    expect(help.output()).toMatch(/Usage: courier client:create \[options\] <name>/);
    const missing = start('workers/cli.ts', ['client:create']);
    expect((await missing.exited).code).not.toBe(0);
    expect(missing.output()).toMatch(/missing required argument 'name'/);
  });

  it.each([
    ['workers/orders.ts', /# TYPE courier_warmup_seconds histogram/],
    ['workers/notifier.ts', /process_cpu_seconds_total\{process="notifier"\}/],
    ['workers/scheduler.ts', /process_cpu_seconds_total\{process="scheduler"\}/],
  ])('%s starts, reports ready, serves its metrics on 127.0.0.1 (not the web HOST), and stops on SIGTERM', async (file, metric) => {
    const port = await closedPort();
    const child = start(file, [], { METRICS_PORT: String(port), HOST: '0.0.0.0' });
    await child.waitForLine(/ready/, 20_000);
    expect(child.output()).toContain(`"host":"127.0.0.1","port":${port}`);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(metric);
    child.process.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });
});
