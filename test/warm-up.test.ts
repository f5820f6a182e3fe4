import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { warmUpCacheJob, type WarmUpProgress } from '../jobs/warm-up-cache.ts';
import { merchantCacheKey, riderCacheKey } from '../shared/cache/hot-data-cache.ts';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { createMetrics } from '../shared/metrics.ts';
import type { OrderRecord } from '../shared/orders/read-order.ts';
import { ORDER_STATUSES } from '../shared/orders/status.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { CourierProducer } from '../jobs/courier-producer.ts';
import { JobProducer } from '../jobs/producer.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { startMaintenance, type Maintenance } from '../workers/maintenance-pipeline.ts';
import { createSchedulerTicks, scheduleWarmUps, type Schedule } from '../workers/scheduler-ticks.ts';
import { runTsx, type Child } from './support/child-process.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT, createTestWeb, type TestWeb } from './support/test-web.ts';

const ORDER_COUNT = 12_000; // 3 of every 4 active: more than one 5,000-row page
const ID_BASE = 500_000_000_000_000_000n;
const MERCHANTS = [
  TEST_MERCHANT,
  { id: '1002', name: 'Test Dumplings', zone_id: 'test-zone', lat: 31.2401, lng: 121.5003, address: '2 Test Rd' },
  { id: '1003', name: 'Test Tea', zone_id: 'other-zone', lat: 31.2286, lng: 121.4476, address: '3 Test Rd' },
];
const RIDERS = Array.from({ length: 5 }, (_, i) => ({
  id: String(2001 + i),
  name: `Rider ${i}`,
  zone_id: 'test-zone',
  status: 'AVAILABLE',
  lat: 31.239 + i / 1000,
  lng: 121.499,
  capacity: 3,
  active_orders: i % 3,
}));

let web: TestWeb;
let redis: Redis;
let cache: OrderCache;
/** The queue prefix of the scheduler and maintenance tests (the web's own start warm-up stays out of it). */
const schedulerPrefix = uniqueQueuePrefix();
const cliCachePrefix = `courier-test-cli-${randomBytes(5).toString('hex')}`;
const queues: Queue[] = [];
const producers: JobProducer[] = [];
const connections: Redis[] = [];
const children: Child[] = [];
let maintenance: Maintenance | undefined;
let schedule: Schedule | undefined;
/** Every inserted order: id -> [status, version]. */
const inserted = new Map<string, { status: string; version: number }>();

function silent() {
  return pino({ level: 'silent' });
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** A producer of the scheduler's prefix, as a scheduler process has one. */
function schedulerProducer(): JobProducer {
  const producer = new JobProducer(redis, { prefix: schedulerPrefix, timeoutMs: 2000 });
  producers.push(producer);
  return producer;
}

function maintenanceQueue(): Queue {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  connections.push(connection);
  const queue = createQueue(QUEUE_NAMES.maintenance, { connection, prefix: schedulerPrefix });
  queues.push(queue);
  return queue;
}

/** The cached version of each order (undefined where nothing is cached), in one round trip. */
async function cachedVersions(ids: readonly string[]): Promise<Map<string, number | undefined>> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(cache.key(id), 'v');
  const results = (await pipeline.exec()) ?? [];
  return new Map(ids.map((id, i) => [id, results[i]?.[1] === null ? undefined : Number(results[i]?.[1])]));
}

function activeIds(): string[] {
  return [...inserted].filter(([, row]) => row.status !== 'DELIVERED' && row.status !== 'CANCELLED').map(([id]) => id);
}

beforeAll(async () => {
  web = await createTestWeb({ warmupOnStart: true });
  redis = new Redis(TEST_REDIS_URL);
  cache = new OrderCache(redis, { prefix: web.config.cachePrefix, ttlMs: web.config.cacheTtlMs, finalTtlMs: web.config.cacheFinalTtlMs });
  const db = web.database.db;
  await db('merchants').insert(MERCHANTS.slice(1));
  await db('riders').insert(RIDERS);
  const rows = Array.from({ length: ORDER_COUNT }, (_, i) => {
    const id = String(ID_BASE + BigInt(i) * 7n);
    const status = ORDER_STATUSES[i % ORDER_STATUSES.length]!;
    const version = 1 + (i % 5);
    inserted.set(id, { status, version });
    return {
      id,
      client_id: web.clientId,
      idempotency_key: `warm-${i}`,
      request_hash: '0'.repeat(64),
      merchant_id: TEST_MERCHANT.id,
      zone_id: TEST_MERCHANT.zone_id,
      status,
      version,
      pickup_lat: TEST_MERCHANT.lat,
      pickup_lng: TEST_MERCHANT.lng,
      dropoff_lat: 31.2304,
      dropoff_lng: 121.4737,
      dropoff_address: '88 Century Ave',
      dropoff_phone: '+8613800000000',
      items: JSON.stringify([{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 1, priceCents: 1800 }]),
    };
  });
  for (let i = 0; i < rows.length; i += 2000) await db('orders').insert(rows.slice(i, i + 2000));
});

afterAll(async () => {
  await schedule?.stop();
  await maintenance?.close();
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await Promise.all(queues.map((queue) => queue.close()));
  await Promise.all(producers.map((producer) => producer.close()));
  for (const connection of connections) connection.disconnect();
  await web?.close();
  await deleteKeysWithPrefix(schedulerPrefix);
  await deleteKeysWithPrefix(cliCachePrefix);
  redis?.disconnect();
});

describe('warmUpCacheJob', () => {
  it('loads every active order at its current version (no delivered or cancelled one), the merchants and the riders, and reports it', async () => {
    const { logger, lines } = capturingLogger();
    const metrics = createMetrics();
    const outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: web.database.db, redis, config: web.config, logger, metrics },
    );
    const active = activeIds();
    expect(outcome).toMatchObject({ orders: active.length, ordersWritten: active.length, merchants: MERCHANTS.length, riders: RIDERS.length });
    console.log(
      `warm-up: ${outcome.orders} active orders (of ${ORDER_COUNT}), ${outcome.merchants} merchants, ${outcome.riders} riders in ${outcome.ms} ms`,
    );

    const versions = await cachedVersions([...inserted.keys()]);
    for (const [id, row] of inserted) {
      const terminal = row.status === 'DELIVERED' || row.status === 'CANCELLED';
      expect(versions.get(id), `order ${id} (${row.status})`).toBe(terminal ? undefined : row.version);
    }
    const sample = await cache.get(active[0]!);
    expect(sample).toMatchObject({ kind: 'hit', record: { clientId: web.clientId, order: { id: active[0], version: inserted.get(active[0]!)!.version } } });
    expect(await redis.pttl(cache.key(active[0]!))).toBeGreaterThan(web.config.cacheTtlMs - 60_000);

    const prefix = web.config.cachePrefix;
    expect(await redis.hgetall(merchantCacheKey(prefix, '1002'))).toEqual({ zone: 'test-zone', lat: '31.2401', lng: '121.5003', name: 'Test Dumplings' });
    expect(await redis.hgetall(riderCacheKey(prefix, '2003'))).toEqual({
      zone: 'test-zone',
      lat: '31.241',
      lng: '121.499',
      status: 'AVAILABLE',
      activeOrders: '2',
      capacity: '3',
    });
    const riderTtl = await redis.pttl(riderCacheKey(prefix, '2003'));
    expect(riderTtl).toBeGreaterThan(0);
    expect(riderTtl).toBeLessThanOrEqual(web.config.cacheTtlMs);

    const done = lines.filter((line) => /cache warm-up/.test(String(line.msg)));
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ reason: 'cli', orders: active.length, merchants: 3, riders: 5, ms: outcome.ms });
    const items = await metrics.registry.getSingleMetricAsString('courier_warmup_items_total');
    expect(items).toContain(`courier_warmup_items_total{kind="order"} ${active.length}`);
    expect(items).toContain('courier_warmup_items_total{kind="merchant"} 3');
    expect(items).toContain('courier_warmup_items_total{kind="rider"} 5');
    expect(await metrics.registry.getSingleMetricAsString('courier_warmup_seconds')).toContain('courier_warmup_seconds_count{reason="cli"} 1');
  });

  it('never moves a cached version backwards, nor refills a version a writer marked stale', async () => {
    const [newer, stale, forgotten] = activeIds();
    const newerRecord: OrderRecord = {
      clientId: web.clientId,
      order: { ...((await cache.get(newer!)) as { record: OrderRecord }).record.order, version: inserted.get(newer!)!.version + 3, note: 'a writer got here first' },
    };
    expect(await cache.fill(newerRecord, await cache.epoch())).toBe(true);
    await cache.markStaleMany([{ id: stale!, version: inserted.get(stale!)!.version }]); // a writer is about to change it
    await redis.del(cache.key(forgotten!)); // evicted

    const outcome = await warmUpCacheJob({ reason: 'cron' }, { db: web.database.db, redis, config: web.config, logger: silent() });
    expect(outcome.ordersWritten).toBe(1); // only the evicted one: the rest were cached at their version, or newer
    expect(await cache.get(newer!)).toMatchObject({ kind: 'hit', record: { order: { version: newerRecord.order.version, note: 'a writer got here first' } } });
    expect(await cache.get(stale!)).toEqual({ kind: 'stale', version: inserted.get(stale!)!.version });
    expect(await cache.get(forgotten!)).toMatchObject({ kind: 'hit', record: { order: { version: inserted.get(forgotten!)!.version } } });
  });

  it('races with writers safely: after both, every cached order is at its version in MySQL', async () => {
    const created = [...inserted].filter(([, row]) => row.status === 'CREATED').map(([id]) => id).slice(0, 100);
    await Promise.all(created.map((id) => redis.del(cache.key(id))));
    const cancelledAt: number[] = [];
    const cancelAll = Promise.all(
      created.map(async (id) => {
        const res = await web.runtime.app.inject({
          method: 'POST',
          url: `/v1/orders/${id}/events`,
          headers: { authorization: `Bearer ${web.apiKey}` },
          payload: { type: 'cancel' },
        });
        expect(res.statusCode, res.body).toBe(200);
        cancelledAt.push(performance.now());
      }),
    );
    const warmStart = performance.now();
    let warmEnd = 0;
    const warm = warmUpCacheJob({ reason: 'cron' }, { db: web.database.db, redis, config: web.config, logger: silent(), pageSize: 500 }).finally(
      () => (warmEnd = performance.now()),
    );
    const [outcome] = await Promise.all([warm, cancelAll]);
    const during = cancelledAt.filter((t) => t > warmStart && t < warmEnd).length;
    console.log(`race: ${during} of ${created.length} cancels committed while the warm-up (${outcome.ms} ms) ran`);
    expect(outcome.orders).toBeGreaterThan(0);
    const rows = await web.database.db('orders').select('id', 'version', 'status').whereIn('id', created);
    const versions = await cachedVersions(created);
    for (const row of rows) {
      expect(row.status).toBe('CANCELLED');
      const cached = versions.get(String(row.id));
      // The writer reloads the cache after its change; a warm-up read from before it can never win.
      expect(cached, `order ${row.id}`).toBe(Number(row.version));
      inserted.set(String(row.id), { status: 'CANCELLED', version: Number(row.version) });
    }
  });

  it('reports its progress page by page, ending at the total', async () => {
    const progress: WarmUpProgress[] = [];
    const outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: web.database.db, redis, config: web.config, logger: silent(), onProgress: (p) => progress.push(p), pageSize: 2000 },
    );
    const total = outcome.orders + outcome.merchants + outcome.riders;
    expect(progress[0]).toEqual({ loaded: 0, total });
    expect(progress.at(-1)).toEqual({ loaded: total, total });
    expect(progress.length).toBeGreaterThanOrEqual(1 + Math.ceil(outcome.orders / 2000) + 2);
    for (let i = 1; i < progress.length; i += 1) expect(progress[i]!.loaded).toBeGreaterThanOrEqual(progress[i - 1]!.loaded);
  });

  it('stops at the next page when its signal aborts (a worker shutting down)', async () => {
    const aborter = new AbortController();
    const progress: WarmUpProgress[] = [];
    const run = warmUpCacheJob(
      { reason: 'cron' },
      {
        db: web.database.db,
        redis,
        config: web.config,
        logger: silent(),
        pageSize: 1000,
        signal: aborter.signal,
        onProgress: (p) => {
          progress.push(p);
          if (p.loaded > 0) aborter.abort(new Error('worker shutting down'));
        },
      },
    );
    await expect(run).rejects.toThrow('worker shutting down');
    expect(progress.at(-1)!.loaded).toBe(1000);
  });
});

describe('when warm-ups are enqueued', () => {
  it('a web process enqueues one at start (it does not run it)', async () => {
    const queue = createQueue(QUEUE_NAMES.maintenance, { connection: redis, prefix: web.config.queuePrefix });
    queues.push(queue);
    await vi.waitFor(async () => {
      const jobs = await queue.getJobs(['waiting']);
      expect(jobs.map((job) => [job.name, job.data.reason])).toEqual([['cache.warm-up', 'start']]);
      expect(jobs[0]!.id).toMatch(/^start-warmup-\d{12}$/);
    }, { timeout: 5000, interval: 20 });
  });

  it('two schedulers firing the same tick enqueue one job; the next minute is another', async () => {
    const queue = maintenanceQueue();
    const first = createSchedulerTicks({ producer: schedulerProducer(), logger: silent() });
    const second = createSchedulerTicks({ producer: schedulerProducer(), logger: silent() });
    const due = new Date('2031-03-04T10:30:00.000Z');
    const ids = await Promise.all([first.warmUp(due), second.warmUp(due), second.warmUp(new Date('2031-03-04T10:30:41.000Z'))]);
    expect(new Set(ids)).toEqual(new Set(['cron-warmup-203103041030']));
    expect(await second.warmUp(new Date('2031-03-04T10:31:00.000Z'))).toBe('cron-warmup-203103041031');
    try {
      const jobs = await queue.getJobs(['waiting']);
      expect(jobs.map((job) => job.id).sort()).toEqual(['cron-warmup-203103041030', 'cron-warmup-203103041031']);
      expect(jobs.every((job) => job.name === 'cache.warm-up' && job.data.reason === 'cron')).toBe(true);
    } finally {
      await queue.drain();
    }
  });

  it('node-cron ticks go through the same job id: as many jobs as distinct minutes fired', async () => {
    const queue = maintenanceQueue();
    const ticks = createSchedulerTicks({ producer: schedulerProducer(), logger: silent() });
    const dues: Date[] = [];
    schedule = scheduleWarmUps(['* * * * * *'], { warmUp: (due) => (dues.push(due), ticks.warmUp(due)) }, silent());
    await vi.waitFor(() => expect(dues.length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 20 });
    await schedule.stop();
    schedule = undefined;
    const minutes = new Set(dues.map((due) => due.toISOString().slice(0, 16)));
    expect(await queue.getJobCountByTypes('waiting')).toBe(minutes.size);
    await queue.drain();
  });

  it('a tick whose enqueue fails (Redis away) is tried again with the same slot', async () => {
    const calls: Date[] = [];
    const flaky = {
      warmUp: async (due: Date) => {
        calls.push(due);
        if (calls.length <= 2) throw new Error('Stream isn\'t writeable');
        return 'enqueued';
      },
    };
    const { logger, lines } = capturingLogger();
    schedule = scheduleWarmUps(['* * * * * *'], flaky, logger, { retryDelaysMs: [5, 5, 5] });
    await vi.waitFor(() => expect(calls.length).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 10 });
    await schedule.stop();
    schedule = undefined;
    expect(calls[1]).toEqual(calls[0]);
    expect(calls[2]).toEqual(calls[0]);
    expect(lines.filter((line) => /trying again/.test(String(line.msg)))).toHaveLength(2);
    expect(lines.filter((line) => line.level === 50)).toHaveLength(0);
  });

  it('a spec node-cron cannot parse is a configuration error naming WARMUP_CRON', () => {
    const ticks = { warmUp: async () => 'never' };
    expect(() => scheduleWarmUps(['30 10 * * *', 'at half past ten'], ticks, silent())).toThrow(/WARMUP_CRON: "at half past ten"/);
  });

  it('other services can enqueue one through CourierProducer (maintenance queue, per-minute id)', async () => {
    const producer = new CourierProducer({ redisUrl: TEST_REDIS_URL, queuePrefix: schedulerPrefix });
    try {
      const jobId = await producer.add('cache.warm-up', { reason: 'cron' });
      expect(jobId).toMatch(/^cron-warmup-\d{12}$/);
      const queue = maintenanceQueue();
      expect((await queue.getJob(jobId))?.name).toBe('cache.warm-up');
      await expect(producer.add('cache.warm-up', { reason: 'whenever' } as never)).rejects.toThrow(/malformed cache.warm-up payload/);
      await queue.drain();
    } finally {
      await producer.close();
    }
  });
});

describe('the maintenance worker', () => {
  it('runs an enqueued warm-up once, and keeps the finished job so a late scheduler adds nothing', async () => {
    const { logger, lines } = capturingLogger();
    maintenance = await startMaintenance({ ...web.config, queuePrefix: schedulerPrefix }, logger);
    await maintenance.worker.waitUntilReady();
    const queue = maintenanceQueue();
    const ticks = createSchedulerTicks({ producer: schedulerProducer(), logger: silent() });
    const due = new Date('2031-03-04T16:30:00.000Z');
    const jobId = await ticks.warmUp(due);
    await vi.waitFor(async () => expect(await queue.getJobState(jobId)).toBe('completed'), { timeout: 20_000, interval: 20 });
    const job = await queue.getJob(jobId);
    expect(job?.returnvalue).toMatchObject({ orders: activeIds().length, merchants: 3, riders: 5 });
    console.log(`maintenance worker warm-up: ${JSON.stringify(job?.returnvalue)}`);

    // Another scheduler's tick of the same minute arrives after the job finished: still one job.
    await createSchedulerTicks({ producer: schedulerProducer(), logger: silent() }).warmUp(due);
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'delayed')).toEqual({ waiting: 0, active: 0, completed: 1, delayed: 0 });
    expect(await maintenance.metrics!.registry.getSingleMetricAsString('courier_warmup_seconds')).toMatch(
      /courier_warmup_seconds_count\{[^}]*reason="cron"[^}]*\} 1$/m,
    );
    expect(lines.filter((line) => /cache warm-up/.test(String(line.msg)))).toHaveLength(1);
    await maintenance.close();
    maintenance = undefined;
  });
});

describe('the scheduler process', () => {
  it('stops at start with exit code 78 when WARMUP_CRON holds a spec node-cron cannot parse', async () => {
    const child = runTsx('workers/scheduler.ts', [], { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: schedulerPrefix, WARMUP_CRON: '30 10 * * *;half past ten' });
    children.push(child);
    expect((await child.exited).code).toBe(78);
    expect(child.output()).toMatch(/bad configuration: WARMUP_CRON: "half past ten"/);
  });
});

describe('npm run cli -- cache:warm', () => {
  function cli(args: string[], env: Record<string, string> = {}): Child {
    const child = runTsx('workers/cli.ts', args, {
      MYSQL_URL: web.database.mysqlUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: schedulerPrefix,
      CACHE_PREFIX: cliCachePrefix,
      ...env,
    });
    children.push(child);
    return child;
  }

  it('warms the cache in its own process and prints what it loaded', async () => {
    const child = cli(['cache:warm']);
    const { code } = await child.exited;
    expect(code, child.output()).toBe(0);
    const active = activeIds().length;
    const summary = new RegExp(`warmed the cache \\(${cliCachePrefix}\\) in (\\d+) ms: ${active} active orders \\(${active} written.*\\), 3 merchants, 5 riders`);
    expect(child.output()).toMatch(summary);
    console.log(`cli: ${child.output().trim().split('\n').at(-1)}`);
    const cliCache = new OrderCache(redis, { prefix: cliCachePrefix, ttlMs: 60_000, finalTtlMs: 60_000 });
    const id = activeIds()[0]!;
    expect(await cliCache.get(id)).toMatchObject({ kind: 'hit', record: { order: { id, version: inserted.get(id)!.version } } });
  });

  it('explains itself with --help, and exits 1 with the reason when Redis is away', async () => {
    const help = cli(['cache:warm', '--help']);
    expect((await help.exited).code).toBe(0);
    expect(help.output()).toMatch(/Usage: courier cache:warm \[options\]/);
    expect(help.output()).toMatch(/--page-size <rows>/);

    const away = cli(['cache:warm'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    expect((await away.exited).code).toBe(1);
    expect(away.output()).toMatch(/courier: .*ECONNREFUSED/);
  });
});
