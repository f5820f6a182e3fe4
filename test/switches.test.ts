import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JobProducer } from '../jobs/producer.ts';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { IdGenerator } from '../shared/ids.ts';
import { buildDevProvider, type DeliveredMessage, type DevProviderStats } from '../shared/notifications/dev-provider-app.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import { writeOrders, type OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { runScript, type Child } from './support/child-process.ts';
import { seedOrders } from './support/seed-orders.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

/**
 * The degradation switches through real processes: flipped with `npm run cli -- switches:set`,
 * read by the web, notifier, scheduler and worker processes within a second (each logs the change
 * once, with the moment the CLI set it, so the delay is measured, not guessed), shown in each
 * one's /metrics, and acted on: the tracking view without the rider, the notifier holding its jobs,
 * the warm-ups skipped. (The reader's own behaviour, Redis away or emptied, is switch-reader.test.ts.)
 */

/** A process start or a CLI run: a few seconds each on a busy shared machine. */
const SLOW = 120_000;
const RIDER = { id: '7101', name: 'Rider Seven', zone_id: TEST_MERCHANT.zone_id, lat: 31.2357, lng: 121.4801, capacity: 3 };

let database: TestDatabase;
let provider: FastifyInstance;
let redis: Redis;
let producer: JobProducer;
let writer: OrderWriterDeps;
let config: Config;
let env: Record<string, string>;
let apiKey: string;
let clientId: string;
const children: Child[] = [];
const queuePrefix = uniqueQueuePrefix();
const cachePrefix = queuePrefix.slice(1, -1);
const switchesKey = `${queuePrefix}:switches`;

interface Fleet {
  readonly web: Child;
  readonly webUrl: string;
  readonly notifier: Child;
  readonly scheduler: Child;
  readonly worker: Child;
  /** Each process's /metrics. */
  readonly metrics: { web: string; notifier: string; scheduler: string; worker: string };
}
let fleet: Fleet;

function start(file: string, extraEnv: Record<string, string> = {}): Child {
  const child = runScript(file, [], { ...env, ...extraEnv });
  children.push(child);
  return child;
}

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db('merchants').insert(TEST_MERCHANT);
  await database.db('riders').insert(RIDER);
  const client = await createApiClient(database.db, new IdGenerator(5), 'switches test');
  apiKey = client.key;
  clientId = client.id;
  provider = buildDevProvider();
  await provider.listen({ port: 0, host: '127.0.0.1' });
  env = {
    MYSQL_URL: database.mysqlUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    CACHE_PREFIX: cachePrefix,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    HOST: '127.0.0.1',
    NOTIFY_PROVIDER_URL: `http://127.0.0.1:${(provider.server.address() as AddressInfo).port}`,
    WARMUP_ON_START: 'false',
    // The scheduler ticks a warm-up every second, and nothing else.
    WARMUP_CRON: '* * * * * *',
    COMPENSATE_CRON: '',
    RECONCILE_CRON: '',
  };
  config = loadConfig(env);
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  producer = new JobProducer(redis, { prefix: queuePrefix, timeoutMs: 2000 });
  writer = createOrderWriter(database.db, redis, config, {
    enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
  });

  const [notifierPort, schedulerPort, workerPort] = await Promise.all([closedPort(), closedPort(), closedPort()]);
  const web = start('workers/web.ts', { PORT: '0' });
  const notifier = start('workers/notifier.ts', { METRICS_PORT: String(notifierPort) });
  const scheduler = start('workers/scheduler.ts', { METRICS_PORT: String(schedulerPort) });
  const worker = start('workers/orders.ts', { METRICS_PORT: String(workerPort) });
  const [listening] = await Promise.all([
    web.waitForLine(/web listening/, SLOW),
    notifier.waitForLine(/notifier ready/, SLOW),
    scheduler.waitForLine(/scheduler ready/, SLOW),
    worker.waitForLine(/worker ready/, SLOW),
  ]);
  const webUrl = /API (http:\/\/127\.0\.0\.1:\d+)\/v1\/orders/.exec(listening)![1]!;
  const local = (port: number) => `http://127.0.0.1:${port}/metrics`;
  fleet = {
    web,
    webUrl,
    notifier,
    scheduler,
    worker,
    metrics: { web: `${webUrl}/metrics`, notifier: local(notifierPort), scheduler: local(schedulerPort), worker: local(workerPort) },
  };
}, SLOW);

afterAll(async () => {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await producer?.close();
  redis?.disconnect();
  await provider?.close();
  await database?.drop();
  await deleteKeysWithPrefix(queuePrefix);
  await deleteKeysWithPrefix(cachePrefix);
});

interface CliRun {
  readonly code: number | null;
  readonly output: string;
}

async function cli(args: string[], vars: Record<string, string> = {}): Promise<CliRun> {
  const child = runScript('workers/cli.ts', args, { ...env, LOG_LEVEL: 'warn', ...vars });
  children.push(child);
  const { code } = await child.exited;
  return { code, output: child.output() };
}

/** Flips a switch with the CLI; resolves with the moment it was set (as the CLI printed it). */
async function flip(name: string, value: 'on' | 'off'): Promise<string> {
  const run = await cli(['switches:set', name, value]);
  expect(run.code, run.output).toBe(0);
  const at = new RegExp(`switch ${name}: \\S+(?: \\(the default\\))? -> ${value} at (\\S+Z);`).exec(run.output);
  expect(at, run.output).not.toBeNull();
  return at![1]!;
}

/** Waits for the process's one log line of this change; resolves with how long after the CLI set it the process applied it, in ms. */
async function applied(child: Child, name: string, value: 'on' | 'off', at: string): Promise<number> {
  const line = await child.waitForLine(new RegExp(`"setAt":"${at.replace(/\./g, '\\.')}".*"msg":"switch ${name} turned ${value}`), 10_000);
  const logged = JSON.parse(line) as { time: string; switch: string; on: boolean };
  expect(logged).toMatchObject({ switch: name, on: value === 'on' });
  const lines = child.output().split('\n').filter((l) => l.includes(`"setAt":"${at}"`) && l.includes(`"switch":"${name}"`));
  expect(lines, 'one info line per change').toHaveLength(1);
  return Date.parse(logged.time) - Date.parse(at);
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(url)).text();
}

function gauge(metrics: string, name: string): number | undefined {
  const found = new RegExp(`^courier_switch_on\\{switch="${name}"[^}]*\\} (\\d)$`, 'm').exec(metrics);
  return found ? Number(found[1]) : undefined;
}

/** A dispatched order of ours (through the write routine): its ledger rows PENDING, one notification batch job enqueued. */
async function dispatchedOrder(): Promise<string> {
  const [id] = await seedOrders(database.db, { clientId, status: 'PRICED', count: 1 });
  const written = await writeOrders(writer, {
    orderIds: [id!],
    actor: 'worker:dispatch',
    jobId: `dispatch-switches-${id}`,
    waitMs: 2000,
    plan: () => [{ orderId: id!, to: 'DISPATCHED', reason: `rider ${RIDER.id}`, patch: { rider_id: RIDER.id, eta_seconds: 1500 } }],
  });
  expect(written.notifications?.enqueued).toBe(true);
  return id!;
}

describe('switches:list and switches:set', () => {
  it(
    'lists every switch with its value and what off does; set says what it changed; the same value again changes nothing',
    async () => {
      const defaults = await cli(['switches:list', '--json']);
      expect(defaults.code, defaults.output).toBe(0);
      const listed = JSON.parse(defaults.output) as { key: string; switches: { name: string; state: string; setAt: string | null; off: string }[] };
      expect(listed.key).toBe(switchesKey);
      expect(listed.switches.map((s) => [s.name, s.state, s.setAt])).toEqual([
        ['tracking-rider', 'on', null],
        ['notifications', 'on', null],
        ['warm-up', 'on', null],
      ]);
      expect(listed.switches.every((s) => s.off.length > 20)).toBe(true);

      const at = await flip('warm-up', 'off');
      const again = await cli(['switches:set', 'warm-up', 'off']);
      expect(again.code, again.output).toBe(0);
      expect(again.output).toContain(`switch warm-up is already off (since ${at}): nothing changed`);
      expect(await redis.hget(switchesKey, 'warm-up:at')).toBe(String(Date.parse(at)));

      const table = await cli(['switches:list']);
      expect(table.code, table.output).toBe(0);
      expect(table.output).toMatch(/^SWITCH\s+STATE\s+SINCE\s+BY\s+READ BY\s+WHEN OFF$/m);
      expect(table.output).toMatch(new RegExp(`^warm-up\\s+off\\s+${at.slice(0, 19).replace('T', ' ')}Z\\s+\\S+@\\S+\\s+scheduler, worker\\s+cache warm-ups are skipped`, 'm'));
      expect(table.output).toMatch(/^notifications\s+on\s+\(default\)\s+-\s+notifier/m);
      await flip('warm-up', 'on');
    },
    SLOW,
  );

  it(
    'refuses an unknown switch or a value other than on or off with its code, and changes nothing',
    async () => {
      const before = await redis.hgetall(switchesKey);
      const [unknown, badValue, missing, away] = await Promise.all([
        cli(['switches:set', 'tracking', 'off']),
        cli(['switches:set', 'notifications', 'OFF']),
        cli(['switches:set', 'notifications']),
        cli(['switches:set', 'notifications', 'off'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` }),
      ]);
      expect(unknown.code).toBe(1);
      expect(unknown.output).toMatch(/UNKNOWN_SWITCH: "tracking" is not a switch; the switches are tracking-rider, notifications, warm-up/);
      expect(badValue.code).toBe(1);
      expect(badValue.output).toMatch(/INVALID_SWITCH_VALUE: "OFF" is not on or off/);
      expect(missing.code).toBe(1);
      expect(missing.output).toMatch(/missing required argument 'value'/);
      expect(away.code).toBe(1);
      expect(away.output.trim()).toMatch(/^courier: Redis is not reachable at 127\.0\.0\.1:\d+: .*ECONNREFUSED.*$/);
      expect(await redis.hgetall(switchesKey)).toEqual(before);
      for (const child of [fleet.web, fleet.notifier, fleet.scheduler, fleet.worker]) expect(child.output()).not.toMatch(/switch notifications turned/);
    },
    SLOW,
  );
});

describe('tracking-rider (the web process)', () => {
  it(
    "off: the tracking view answers without the rider's position, naming it in missing, within a second of the flip; on: with it again",
    async () => {
      const id = await dispatchedOrder();
      const track = async () => {
        const res = await fetch(`${fleet.webUrl}/v1/orders/${id}/tracking`, { headers: { authorization: `Bearer ${apiKey}` } });
        expect(res.status).toBe(200);
        return (await res.json()) as { rider: { riderId: string } | null; eta: { remainingSeconds: number } | null; missing: string[] };
      };
      expect(await track()).toMatchObject({ rider: { riderId: RIDER.id }, eta: { remainingSeconds: expect.any(Number) }, missing: [] });
      expect(gauge(await metricsOf(fleet.metrics.web), 'tracking-rider')).toBe(1);

      const off = await flip('tracking-rider', 'off');
      const delay = await applied(fleet.web, 'tracking-rider', 'off', off);
      console.log(`tracking-rider off: applied by the web process ${delay} ms after the CLI set it`);
      expect(delay).toBeLessThan(1000);
      expect(await track()).toMatchObject({ rider: null, eta: { remainingSeconds: expect.any(Number) }, missing: ['rider'] });
      expect(gauge(await metricsOf(fleet.metrics.web), 'tracking-rider')).toBe(0);

      const on = await flip('tracking-rider', 'on');
      expect(await applied(fleet.web, 'tracking-rider', 'on', on)).toBeLessThan(1000);
      expect(await track()).toMatchObject({ rider: { riderId: RIDER.id }, missing: [] });
      expect(gauge(await metricsOf(fleet.metrics.web), 'tracking-rider')).toBe(1);
    },
    SLOW,
  );
});

describe('notifications (the notifier process)', () => {
  async function delivered(orderId: string): Promise<DeliveredMessage[]> {
    return (await provider.inject({ method: 'GET', url: `/v1/messages?orderId=${orderId}` })).json().messages;
  }
  const stats = async (): Promise<DevProviderStats> => (await provider.inject({ method: 'GET', url: '/control' })).json().stats;
  const lastRead = async () => Number(/^courier_switches_last_read_timestamp_seconds\{[^}]*\} (\S+)$/m.exec(await metricsOf(fleet.metrics.notifier))?.[1]);

  it(
    'off: the notifier holds its jobs (nothing sent, ledger rows PENDING, no attempt spent); on again: every one goes out, once',
    async () => {
      const off = await flip('notifications', 'off');
      const delay = await applied(fleet.notifier, 'notifications', 'off', off);
      console.log(`notifications off: applied by the notifier ${delay} ms after the CLI set it`);
      expect(delay).toBeLessThan(1000);
      expect(gauge(await metricsOf(fleet.metrics.notifier), 'notifications')).toBe(0);

      const orders = [await dispatchedOrder(), await dispatchedOrder(), await dispatchedOrder()];
      const enqueuedAt = Date.now() / 1000;
      // The notifier has read the switches twice since (a second has passed): a worker that was not
      // holding would have taken these jobs within milliseconds.
      await vi.waitFor(async () => expect(await lastRead()).toBeGreaterThan(enqueuedAt + 1), { timeout: 15_000, interval: 100 });
      const rows = await database.db('notifications').whereIn('order_id', orders);
      expect(rows).toHaveLength(6);
      expect(rows.every((row) => row.status === 'PENDING' && row.attempts === 0)).toBe(true);
      const jobs = await producer.queue('notifications').getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
      const ours = jobs.filter((job) => (job.data.notifications as { orderId: string }[]).some((n) => orders.includes(n.orderId)));
      expect(ours).toHaveLength(3);
      for (const job of ours) {
        expect(['waiting', 'delayed']).toContain(await job.getState());
        expect(job.attemptsMade).toBe(0);
      }
      for (const id of orders) expect(await delivered(id)).toEqual([]);
      const duplicatesBefore = (await stats()).duplicates;

      const on = await flip('notifications', 'on');
      expect(await applied(fleet.notifier, 'notifications', 'on', on)).toBeLessThan(1000);
      await vi.waitFor(
        async () => {
          const sent = await database.db('notifications').whereIn('order_id', orders).where({ status: 'SENT' });
          expect(sent).toHaveLength(6);
        },
        { timeout: 20_000, interval: 50 },
      );
      for (const id of orders) {
        const messages = await delivered(id);
        expect(messages.map((m) => m.kind).sort()).toEqual(['customer.dispatched', 'merchant.dispatched']);
      }
      expect((await stats()).duplicates).toBe(duplicatesBefore);
      const sentRows = await database.db('notifications').whereIn('order_id', orders);
      expect(sentRows.every((row) => row.attempts === 1)).toBe(true);
    },
    SLOW,
  );
});

describe('warm-up (the scheduler and worker processes)', () => {
  it(
    "off: the scheduler's ticks skip and the worker skips a warm-up job that reaches it, each saying so; on: the ticks enqueue again",
    async () => {
      await fleet.scheduler.waitForLine(/warm-up tick: enqueued/, 20_000);
      const off = await flip('warm-up', 'off');
      const [schedulerDelay, workerDelay] = await Promise.all([
        applied(fleet.scheduler, 'warm-up', 'off', off),
        applied(fleet.worker, 'warm-up', 'off', off),
      ]);
      console.log(`warm-up off: applied by the scheduler ${schedulerDelay} ms, by the worker ${workerDelay} ms after the CLI set it`);
      expect(schedulerDelay).toBeLessThan(1000);
      expect(workerDelay).toBeLessThan(1000);
      await fleet.scheduler.waitForLine(/warm-up tick skipped: the warm-up switch is off/, 10_000);
      const [schedulerMetrics, workerMetrics] = await Promise.all([metricsOf(fleet.metrics.scheduler), metricsOf(fleet.metrics.worker)]);
      expect(gauge(schedulerMetrics, 'warm-up')).toBe(0);
      expect(gauge(workerMetrics, 'warm-up')).toBe(0);

      // A web start's warm-up (or a tick's from before the flip) reaches the worker anyway: skipped.
      const jobId = await producer.add('cache.warm-up', { reason: 'start', at: Date.UTC(2031, 2, 4, 10, 30) });
      const queue = producer.queue('maintenance');
      await vi.waitFor(async () => expect(await queue.getJobState(jobId)).toBe('completed'), { timeout: 20_000, interval: 50 });
      expect((await queue.getJob(jobId))?.returnvalue).toEqual({ orders: 0, ordersWritten: 0, merchants: 0, riders: 0, ms: expect.any(Number), skipped: 'the warm-up switch is off' });
      await fleet.worker.waitForLine(/cache warm-up \(start\) skipped: the warm-up switch is off/, 5000);

      const on = await flip('warm-up', 'on');
      expect(await applied(fleet.scheduler, 'warm-up', 'on', on)).toBeLessThan(1000);
      await vi.waitFor(
        () => {
          const output = fleet.scheduler.output();
          const after = output.slice(output.indexOf(`"setAt":"${on}"`));
          expect(after).toMatch(/warm-up tick: enqueued/);
        },
        { timeout: 10_000, interval: 50 },
      );
    },
    SLOW,
  );

  it('every process shows every switch in its /metrics', async () => {
    for (const [process, url] of Object.entries(fleet.metrics)) {
      const metrics = await metricsOf(url);
      for (const name of ['tracking-rider', 'notifications', 'warm-up']) expect(gauge(metrics, name), `${process} ${name}`).toBe(1);
      expect(metrics).toMatch(new RegExp(`courier_switch_on\\{switch="warm-up",process="${process}"\\} 1`));
    }
  });
});
