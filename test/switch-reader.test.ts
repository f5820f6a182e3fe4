import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JobProducer } from '../jobs/producer.ts';
import { loadConfig } from '../shared/config.ts';
import { createRegistry } from '../shared/metrics/registry.ts';
import { createSwitchMetrics } from '../shared/metrics/switch-metrics.ts';
import { buildDevProvider, type DeliveredMessage } from '../shared/notifications/dev-provider-app.ts';
import { ProviderClient } from '../shared/notifications/provider-client.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import { writeOrders } from '../shared/orders/write-orders.ts';
import { switchesChannel, switchesKey } from '../shared/switches/switch-names.ts';
import { writeSwitch } from '../shared/switches/switch-store.ts';
import { openSwitches, type Switches } from '../shared/switches/switches.ts';
import { startNotifier } from '../workers/notifier-pipeline.ts';
import { startQueueWorker } from '../workers/queue-worker.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

/**
 * The switches as one process reads them, in this process: the poll that catches a change whose
 * announcement was lost, at most one read a second, Redis away (the last values kept) and Redis
 * back empty (the values written back); and the queue worker's hold, for a job it had taken just
 * as the hold came.
 */

let privateRedis: PrivateRedis;
const opened: Switches[] = [];

function capturingLogger() {
  const lines: { level: number; msg: string; [field: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

beforeAll(async () => {
  privateRedis = await PrivateRedis.start();
}, 60_000);

afterAll(async () => {
  await Promise.all(opened.map((switches) => switches.close()));
  await privateRedis?.stop();
});

function switchesOn(redisUrl: string, queuePrefix: string, opts: { pollMs?: number } = {}) {
  const config = loadConfig({ REDIS_URL: redisUrl, QUEUE_PREFIX: queuePrefix, REDIS_TIMEOUT_MS: '300' });
  const { logger, lines } = capturingLogger();
  const registry = createRegistry({ processName: 'test' });
  const metrics = { registry, ...createSwitchMetrics(registry) };
  const switches = openSwitches(config, { logger, metrics, ...opts });
  opened.push(switches);
  const keys = { key: switchesKey(config), channel: switchesChannel(config) };
  return { switches, lines, metrics, keys };
}

async function hgetallCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  return Number(/^cmdstat_hgetall:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
}

describe('the switches of one process', () => {
  it('reads them at most once a second, and a change whose announcement was lost at the next poll', async () => {
    const admin = new Redis(privateRedis.url, { maxRetriesPerRequest: 1 });
    try {
      const { switches, lines, keys } = switchesOn(privateRedis.url, uniqueQueuePrefix());
      await switches.read;
      // Subscribed (its connection's first 'ready' has brought its own read), and no announcement
      // comes: every read from here is a poll. Counted from one read to the third after it.
      await vi.waitFor(async () => expect(await admin.pubsub('NUMSUB', keys.channel)).toEqual([keys.channel, 1]), { timeout: 5000, interval: 10 });
      const before = await hgetallCalls(admin);
      await vi.waitFor(async () => expect(await hgetallCalls(admin)).toBeGreaterThan(before), { timeout: 5000, interval: 10 });
      const firstCalls = await hgetallCalls(admin);
      const started = Date.now();
      await vi.waitFor(async () => expect(await hgetallCalls(admin)).toBeGreaterThanOrEqual(firstCalls + 3), { timeout: 10_000, interval: 10 });
      const elapsed = Date.now() - started;
      console.log(`3 polls in ${elapsed} ms`);
      expect(elapsed).toBeGreaterThan(2500);

      // Written without its announcement (a message lost on the way): the next poll reads it.
      const written = Date.now();
      await admin.hset(keys.key, 'warm-up', 'off', 'warm-up:at', String(written), 'warm-up:by', 'test');
      await vi.waitFor(() => expect(switches.isOn('warm-up')).toBe(false), { timeout: 5000, interval: 10 });
      const delay = Date.now() - written;
      console.log(`a change with no announcement read after ${delay} ms`);
      expect(delay).toBeLessThan(2000); // the poll's second, plus this shared machine's scheduling
      expect(lines.filter((line) => line.msg.startsWith('switch warm-up turned off'))).toHaveLength(1);
    } finally {
      admin.disconnect();
    }
  });

  it('an announced change is read at once, not at the next poll', async () => {
    const admin = new Redis(privateRedis.url, { maxRetriesPerRequest: 1 });
    try {
      // A poll a minute: only the announcement can bring the change within the bound below.
      const { switches, keys } = switchesOn(privateRedis.url, uniqueQueuePrefix(), { pollMs: 60_000 });
      await switches.read;
      await vi.waitFor(async () => expect(await admin.pubsub('NUMSUB', keys.channel)).toEqual([keys.channel, 1]), { timeout: 5000, interval: 10 });
      const written = Date.now();
      await writeSwitch(admin, keys, { name: 'tracking-rider', on: false, by: 'operator@test' });
      await vi.waitFor(() => expect(switches.isOn('tracking-rider')).toBe(false), { timeout: 5000, interval: 5 });
      const delay = Date.now() - written;
      console.log(`an announced change read after ${delay} ms`);
      expect(delay).toBeLessThan(1000);
    } finally {
      admin.disconnect();
    }
  });

  it('Redis away: keeps the values it read and says so once; Redis back empty: writes them back and changes nothing', async () => {
    const { switches, lines, metrics, keys } = switchesOn(privateRedis.url, uniqueQueuePrefix());
    const admin = new Redis(privateRedis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    admin.on('error', () => undefined);
    try {
      await switches.read;
      await writeSwitch(admin, keys, { name: 'notifications', on: false, by: 'operator@test' });
      await vi.waitFor(() => expect(switches.isOn('notifications')).toBe(false), { timeout: 2000, interval: 10 });

      await privateRedis.crash();
      await vi.waitFor(() => expect(lines.some((line) => /switches not read \(Redis away\?\): keeping the values read last/.test(line.msg))).toBe(true), {
        timeout: 10_000,
        interval: 20,
      });
      expect(switches.isOn('notifications')).toBe(false);
      expect(switches.values()).toEqual({ 'tracking-rider': 'on', notifications: 'off', 'warm-up': 'on' });

      await privateRedis.restart(); // no persistence: it comes back empty
      await vi.waitFor(async () => expect(await admin.hget(keys.key, 'notifications')).toBe('off'), { timeout: 10_000, interval: 20 });
      expect(await admin.hget(keys.key, 'notifications:by')).toBe('operator@test');
      expect(lines.filter((line) => /switches gone from Redis/.test(line.msg)).length).toBeGreaterThanOrEqual(1);
      // Once per outage, not once per failed poll: each warning is followed by its recovery. (A loaded
      // machine may see a read of the restarted Redis outlast REDIS_TIMEOUT_MS once more: a second,
      // short outage, said and recovered as such.)
      const notRead = lines.filter((line) => /switches not read/.test(line.msg)).length;
      expect(notRead).toBeGreaterThanOrEqual(1);
      expect(notRead).toBeLessThanOrEqual(2);
      expect(lines.filter((line) => line.msg === 'switches read again')).toHaveLength(notRead);
      expect(lines.filter((line) => /^switch notifications turned/.test(line.msg))).toHaveLength(1); // only the first change
      expect(switches.isOn('notifications')).toBe(false);
      expect(await metrics.registry.getSingleMetricAsString('courier_switch_on')).toMatch(/courier_switch_on\{switch="notifications",process="test"\} 0/);

      // The announcements reach it again after the restart (its subscriber resubscribed).
      await writeSwitch(admin, keys, { name: 'notifications', on: true, by: 'operator@test' });
      await vi.waitFor(() => expect(switches.isOn('notifications')).toBe(true), { timeout: 3000, interval: 10 });
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});

describe('a held queue worker', () => {
  let database: TestDatabase;
  let provider: FastifyInstance;

  beforeAll(async () => {
    database = await createTestDatabase();
    await database.db('merchants').insert(TEST_MERCHANT);
    provider = buildDevProvider();
    await provider.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await provider?.close();
    await database?.drop();
  });

  it('the notifier pauses its worker while notifications are off (from its start), and resumes it when they are on', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const config = loadConfig(
      { MYSQL_URL: database.mysqlUrl, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent' },
      { notifyProviderUrl: `http://127.0.0.1:${(provider.server.address() as AddressInfo).port}` },
    );
    const admin = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const keys = { key: switchesKey(config), channel: switchesChannel(config) };
    await writeSwitch(admin, keys, { name: 'notifications', on: false, by: 'operator@test' });
    const notifier = await startNotifier(config, pino({ level: 'silent' }));
    try {
      await notifier.switches.read;
      expect(notifier.worker.isPaused()).toBe(true);
      expect(notifier.worker.isRunning()).toBe(false); // never started: not even one fetch

      await writeSwitch(admin, keys, { name: 'notifications', on: true, by: 'operator@test' });
      await vi.waitFor(() => expect(notifier.worker.isPaused()).toBe(false), { timeout: 5000, interval: 10 });
      await vi.waitFor(() => expect(notifier.worker.isRunning()).toBe(true), { timeout: 5000, interval: 10 });

      await writeSwitch(admin, keys, { name: 'notifications', on: false, by: 'operator@test' });
      await vi.waitFor(() => expect(notifier.worker.isPaused()).toBe(true), { timeout: 5000, interval: 10 });
    } finally {
      await notifier.close();
      admin.disconnect();
      await deleteKeysWithPrefix(queuePrefix);
    }
  });

  it('puts back a job it took as the hold came, without running it or spending an attempt; released, runs it once', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const config = loadConfig(
      { MYSQL_URL: database.mysqlUrl, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent' },
      { notifyProviderUrl: `http://127.0.0.1:${(provider.server.address() as AddressInfo).port}`, jobLockMs: 5000 },
    );
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const producer = new JobProducer(redis, { prefix: queuePrefix, timeoutMs: 2000 });
    const client = new ProviderClient(config);
    let held = false;
    const running = startQueueWorker({
      queue: 'notifications',
      services: { db: database.db, provider: client },
      concurrency: 2,
      config,
      logger: pino({ level: 'silent' }),
      hold: { held: () => held, onChange: () => () => undefined },
    });
    try {
      await running.worker.waitUntilReady();
      // Held, but the worker is never told (not paused): as a job fetched while the switch went off.
      held = true;
      const writer = createOrderWriter(database.db, redis, config, {
        enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
      });
      const [id] = await seedOrders(database.db, { clientId: '1', status: 'PRICED', count: 1 });
      const written = await writeOrders(writer, {
        orderIds: [id!],
        actor: 'worker:dispatch',
        jobId: 'dispatch-held-1',
        waitMs: 2000,
        plan: () => [{ orderId: id!, to: 'DISPATCHED', reason: 'rider 7101', patch: { rider_id: '7101', eta_seconds: 1500 } }],
      });
      const jobId = written.notifications!.jobId;
      const queue = producer.queue('notifications');
      await vi.waitFor(async () => expect(await queue.getJobState(jobId)).toBe('delayed'), { timeout: 10_000, interval: 10 });
      const job = await queue.getJob(jobId);
      expect(job?.attemptsMade).toBe(0);
      expect(job?.failedReason).toBeFalsy();
      const rows = await database.db('notifications').where({ order_id: id });
      expect(rows.map((row) => [row.status, row.attempts])).toEqual([
        ['PENDING', 0],
        ['PENDING', 0],
      ]);
      const delivered = async (): Promise<DeliveredMessage[]> => (await provider.inject({ method: 'GET', url: `/v1/messages?orderId=${id}` })).json().messages;
      expect(await delivered()).toEqual([]);

      held = false;
      await vi.waitFor(async () => expect(await database.db('notifications').where({ order_id: id, status: 'SENT' })).toHaveLength(2), {
        timeout: 15_000,
        interval: 25,
      });
      expect((await delivered()).map((m) => m.kind).sort()).toEqual(['customer.dispatched', 'merchant.dispatched']);
    } finally {
      await running.close();
      await client.close();
      await producer.close();
      redis.disconnect();
      await deleteKeysWithPrefix(queuePrefix);
    }
  });
});
