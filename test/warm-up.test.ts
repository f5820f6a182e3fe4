import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { warmUpCacheJob, type WarmUpProgress } from '../jobs/warm-up-cache.ts';
import { merchantCacheKey, riderCacheKey } from '../shared/cache/hot-data-cache.ts';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { createMaintenanceMetrics } from '../shared/metrics/maintenance-metrics.ts';
import { createRegistry } from '../shared/metrics/registry.ts';
import type { OrderRecord } from '../shared/orders/read-order.ts';
import { ORDER_STATUSES } from '../shared/orders/status.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { CourierProducer } from '../jobs/courier-producer.ts';
import { JobProducer } from '../jobs/producer.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { startMaintenance, type Maintenance } from '../workers/maintenance-pipeline.ts';
import { createSchedulerTicks, scheduleWarmUps, type Schedule } from '../workers/scheduler-ticks.ts';
import { runScript, type Child } from './support/child-process.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT, createTestWeb, type TestWeb } from './support/test-web.ts';

/** 6 of every 8 active (not DELIVERED or CANCELLED): several pages of PAGE_SIZE. */
const ORDER_COUNT = 40;
const PAGE_SIZE = 7;
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
/** Queue and cache prefixes the tests made for themselves, deleted afterwards. */
const prefixes: string[] = [];
const queues: Queue[] = [];
const producers: JobProducer[] = [];
const connections: Redis[] = [];
const children: Child[] = [];
let maintenance: Maintenance | undefined;
let schedule: Schedule | undefined;
let seedRound = 0;

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

/** A queue prefix of the test's own (a Redis hash tag), deleted after the file. */
function ownQueuePrefix(): string {
  const prefix = uniqueQueuePrefix();
  prefixes.push(prefix);
  return prefix;
}

/** The maintenance queue under a prefix of the test's own, so no test sees another's jobs. */
function maintenanceQueue(prefix = ownQueuePrefix()): Queue {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  connections.push(connection);
  const queue = createQueue(QUEUE_NAMES.maintenance, { connection, prefix });
  queues.push(queue);
  return queue;
}

/** A scheduler's ticks enqueueing on this queue's prefix (through a producer of their own, as a scheduler process has). */
function ticksOn(queue: Queue) {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  connections.push(connection);
  const producer = new JobProducer(connection, { prefix: queue.opts.prefix!, timeoutMs: 2000 });
  producers.push(producer);
  return createSchedulerTicks({ producer, logger: silent() });
}

/** The cached version of each order (undefined where nothing is cached), in one round trip. */
async function cachedVersions(ids: readonly string[]): Promise<Map<string, number | undefined>> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(cache.key(id), 'v');
  const results = (await pipeline.exec()) ?? [];
  return new Map(ids.map((id, i) => [id, results[i]?.[1] === null ? undefined : Number(results[i]?.[1])]));
}

/** The orders a test seeded: id -> status and version. */
type Seeded = Map<string, { status: string; version: number }>;

function activeIds(seeded: Seeded): string[] {
  return [...seeded].filter(([, row]) => row.status !== 'DELIVERED' && row.status !== 'CANCELLED').map(([id]) => id);
}

/**
 * What a test needs, made by the test itself: the orders of every other test are deleted (rows,
 * events, notifications, cached entries), then ORDER_COUNT fresh orders are written straight into
 * MySQL, every status in turn, at versions 1 to 5. Nothing is cached afterwards.
 */
async function seedOrders(): Promise<Seeded> {
  const db = web.database.db;
  await Promise.all([db('orders').delete(), db('order_events').delete(), db('notifications').delete()]);
  await deleteKeysWithPrefix(`${web.config.cachePrefix}:order`);
  seedRound += 1;
  const seeded: Seeded = new Map();
  const rows = Array.from({ length: ORDER_COUNT }, (_, i) => {
    const id = String(ID_BASE + BigInt(seedRound * 1000 + i) * 7n);
    const status = ORDER_STATUSES[i % ORDER_STATUSES.length]!;
    const version = 1 + (i % 5);
    seeded.set(id, { status, version });
    return {
      id,
      client_id: web.clientId,
      idempotency_key: `warm-${seedRound}-${i}`,
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
  await db('orders').insert(rows);
  return seeded;
}

beforeAll(async () => {
  web = await createTestWeb({ warmupOnStart: true });
  redis = new Redis(TEST_REDIS_URL);
  cache = new OrderCache(redis, { prefix: web.config.cachePrefix, ttlMs: web.config.cacheTtlMs, finalTtlMs: web.config.cacheFinalTtlMs });
  // Merchants and riders: read by every warm-up, changed by none.
  await web.database.db('merchants').insert(MERCHANTS.slice(1));
  await web.database.db('riders').insert(RIDERS);
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
  for (const prefix of prefixes) await deleteKeysWithPrefix(prefix);
  redis?.disconnect();
});

describe('warmUpCacheJob', () => {
  it('loads every active order at its current version (no delivered or cancelled one), the merchants and the riders, page by page, and reports it', async () => {
    const seeded = await seedOrders();
    const { logger, lines } = capturingLogger();
    const registry = createRegistry();
    const metrics = { registry, ...createMaintenanceMetrics(registry) };
    const outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: web.database.db, redis, config: web.config, logger, metrics, pageSize: PAGE_SIZE },
    );
    const active = activeIds(seeded);
    expect(active.length).toBeGreaterThan(2 * PAGE_SIZE); // several pages, the last one short
    expect(outcome).toMatchObject({ orders: active.length, ordersWritten: active.length, merchants: MERCHANTS.length, riders: RIDERS.length });

    const versions = await cachedVersions([...seeded.keys()]);
    for (const [id, row] of seeded) {
      const terminal = row.status === 'DELIVERED' || row.status === 'CANCELLED';
      expect(versions.get(id), `order ${id} (${row.status})`).toBe(terminal ? undefined : row.version);
    }
    const sample = await cache.get(active[0]!);
    expect(sample).toMatchObject({ kind: 'hit', record: { clientId: web.clientId, order: { id: active[0], version: seeded.get(active[0]!)!.version } } });
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
    const seeded = await seedOrders();
    const deps = { db: web.database.db, redis, config: web.config, logger: silent(), pageSize: PAGE_SIZE };
    expect((await warmUpCacheJob({ reason: 'cron' }, deps)).ordersWritten).toBe(activeIds(seeded).length);
    const [newer, stale, forgotten] = activeIds(seeded);
    const newerRecord: OrderRecord = {
      clientId: web.clientId,
      order: { ...((await cache.get(newer!)) as { record: OrderRecord }).record.order, version: seeded.get(newer!)!.version + 3, note: 'a writer got here first' },
    };
    expect(await cache.fill(newerRecord, await cache.epoch())).toBe(true);
    await cache.markStaleMany([{ id: stale!, version: seeded.get(stale!)!.version }]); // a writer is about to change it
    await cache.evict([forgotten!]); // evicted

    const outcome = await warmUpCacheJob({ reason: 'cron' }, deps);
    expect(outcome.ordersWritten).toBe(1); // only the evicted one: the rest were cached at their version, or newer
    expect(await cache.get(newer!)).toMatchObject({ kind: 'hit', record: { order: { version: newerRecord.order.version, note: 'a writer got here first' } } });
    expect(await cache.get(stale!)).toEqual({ kind: 'stale', version: seeded.get(stale!)!.version });
    expect(await cache.get(forgotten!)).toMatchObject({ kind: 'hit', record: { order: { version: seeded.get(forgotten!)!.version } } });
  });

  it('races with writers safely: a page read before their changes cannot overwrite what they cached', async () => {
    const seeded = await seedOrders();
    const created = [...seeded].filter(([, row]) => row.status === 'CREATED').map(([id]) => id);
    expect(created.length).toBeGreaterThan(1);
    // The worst moment, every time: the warm-up has read its page (the orders still CREATED) and
    // not written it yet when every cancel commits and reloads the cache.
    const warmRedis = new Redis(TEST_REDIS_URL);
    connections.push(warmRedis);
    let pageRead!: () => void;
    const pageIsRead = new Promise<void>((resolve) => (pageRead = resolve));
    let writersDone!: () => void;
    const writersAreDone = new Promise<void>((resolve) => (writersDone = resolve));
    const pipeline = warmRedis.pipeline.bind(warmRedis);
    let gated = false;
    warmRedis.pipeline = ((...args: Parameters<typeof pipeline>) => {
      const batch = pipeline(...args);
      if (gated) return batch;
      gated = true; // the first pipeline of a warm-up is its first page of orders
      const exec = batch.exec.bind(batch);
      batch.exec = (async (...execArgs: Parameters<typeof exec>) => {
        pageRead();
        await writersAreDone;
        return exec(...execArgs);
      }) as typeof batch.exec;
      return batch;
    }) as typeof warmRedis.pipeline;

    // Half of them a reader has cached (a change reloads those); the others nobody read (a change
    // only marks them stale).
    const readFirst = new Set(created.filter((_, index) => index % 2 === 0));
    for (const id of readFirst) expect((await web.runtime.reader.get(id)).record?.order.version).toBe(seeded.get(id)!.version);
    const warm = warmUpCacheJob({ reason: 'cron' }, { db: web.database.db, redis: warmRedis, config: web.config, logger: silent(), pageSize: ORDER_COUNT });
    await pageIsRead;
    for (const id of created) {
      const res = await web.runtime.app.inject({
        method: 'POST',
        url: `/v1/orders/${id}/events`,
        headers: { authorization: `Bearer ${web.apiKey}` },
        payload: { type: 'cancel' },
      });
      expect(res.statusCode, res.body).toBe(200);
    }
    writersDone();
    const outcome = await warm;
    expect(outcome.orders).toBe(activeIds(seeded).length); // it read them all while they were active

    const rows = await web.database.db('orders').select('id', 'version', 'status').whereIn('id', created);
    expect(rows).toHaveLength(created.length);
    for (const row of rows) {
      expect(row.status).toBe('CANCELLED');
      const id = String(row.id);
      // The warm-up's read from before the change must not win: a cached order is at its new
      // version (the writer reloaded it), one nobody had cached holds only the writer's stale mark.
      const expected = readFirst.has(id) ? { kind: 'hit', version: Number(row.version) } : { kind: 'stale', version: Number(row.version) - 1 };
      const entry = await cache.get(id);
      expect({ kind: entry.kind, version: entry.kind === 'hit' ? entry.record.order.version : entry.kind === 'stale' ? entry.version : undefined }, `order ${id}`).toEqual(expected);
    }
  });

  it('reports its progress page by page, ending at the total', async () => {
    await seedOrders();
    const progress: WarmUpProgress[] = [];
    const outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: web.database.db, redis, config: web.config, logger: silent(), onProgress: (p) => progress.push(p), pageSize: PAGE_SIZE },
    );
    const total = outcome.orders + outcome.merchants + outcome.riders;
    expect(progress[0]).toEqual({ loaded: 0, total });
    expect(progress.at(-1)).toEqual({ loaded: total, total });
    expect(progress.length).toBeGreaterThanOrEqual(1 + Math.ceil(outcome.orders / PAGE_SIZE) + 2);
    for (let i = 1; i < progress.length; i += 1) expect(progress[i]!.loaded).toBeGreaterThanOrEqual(progress[i - 1]!.loaded);
  });

  it('stops at the next page when its signal aborts (a worker shutting down)', async () => {
    await seedOrders();
    const aborter = new AbortController();
    const progress: WarmUpProgress[] = [];
    const run = warmUpCacheJob(
      { reason: 'cron' },
      {
        db: web.database.db,
        redis,
        config: web.config,
        logger: silent(),
        pageSize: PAGE_SIZE,
        signal: aborter.signal,
        onProgress: (p) => {
          progress.push(p);
          if (p.loaded > 0) aborter.abort(new Error('worker shutting down'));
        },
      },
    );
    await expect(run).rejects.toThrow('worker shutting down');
    expect(progress.at(-1)!.loaded).toBe(PAGE_SIZE);
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
    const prefix = ownQueuePrefix();
    const queue = maintenanceQueue(prefix);
    const first = ticksOn(maintenanceQueue(prefix));
    const second = ticksOn(queue);
    const due = new Date('2031-03-04T10:30:00.000Z');
    const ids = await Promise.all([first.warmUp(due), second.warmUp(due), second.warmUp(new Date('2031-03-04T10:30:41.000Z'))]);
    expect(new Set(ids)).toEqual(new Set(['cron-warmup-203103041030']));
    expect(await second.warmUp(new Date('2031-03-04T10:31:00.000Z'))).toBe('cron-warmup-203103041031');
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.id).sort()).toEqual(['cron-warmup-203103041030', 'cron-warmup-203103041031']);
    expect(jobs.every((job) => job.name === 'cache.warm-up' && job.data.reason === 'cron')).toBe(true);
  });

  it('node-cron ticks go through the same job id: as many jobs as distinct minutes fired', async () => {
    const queue = maintenanceQueue();
    const ticks = ticksOn(queue);
    const dues: Date[] = [];
    schedule = scheduleWarmUps(['* * * * * *'], { warmUp: (due) => (dues.push(due), ticks.warmUp(due)) }, silent());
    await vi.waitFor(() => expect(dues.length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 20 });
    await schedule.stop();
    schedule = undefined;
    const minutes = new Set(dues.map((due) => due.toISOString().slice(0, 16)));
    expect(await queue.getJobCountByTypes('waiting')).toBe(minutes.size);
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
    const prefix = ownQueuePrefix();
    const producer = new CourierProducer({ redisUrl: TEST_REDIS_URL, queuePrefix: prefix });
    try {
      const jobId = await producer.add('cache.warm-up', { reason: 'cron' });
      expect(jobId).toMatch(/^cron-warmup-\d{12}$/);
      const queue = maintenanceQueue(prefix);
      expect((await queue.getJob(jobId))?.name).toBe('cache.warm-up');
      await expect(producer.add('cache.warm-up', { reason: 'whenever' } as never)).rejects.toThrow(/malformed cache.warm-up payload/);
    } finally {
      await producer.close();
    }
  });
});

describe('the maintenance worker', () => {
  it('runs an enqueued warm-up once, and keeps the finished job so a late scheduler adds nothing', async () => {
    const seeded = await seedOrders();
    const prefix = ownQueuePrefix();
    const { logger, lines } = capturingLogger();
    maintenance = await startMaintenance({ ...web.config, queuePrefix: prefix }, logger);
    await maintenance.worker.waitUntilReady();
    const queue = maintenanceQueue(prefix);
    const ticks = ticksOn(queue);
    const due = new Date('2031-03-04T16:30:00.000Z');
    const jobId = await ticks.warmUp(due);
    await vi.waitFor(async () => expect(await queue.getJobState(jobId)).toBe('completed'), { timeout: 20_000, interval: 20 });
    const job = await queue.getJob(jobId);
    expect(job?.returnvalue).toMatchObject({ orders: activeIds(seeded).length, merchants: 3, riders: 5 });
    console.log(`maintenance worker warm-up: ${JSON.stringify(job?.returnvalue)}`);

    // Another scheduler's tick of the same minute arrives after the job finished: still one job.
    await ticksOn(maintenanceQueue(prefix)).warmUp(due);
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
    const child = runScript('workers/scheduler.ts', [], { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: ownQueuePrefix(), WARMUP_CRON: '30 10 * * *;half past ten' });
    children.push(child);
    expect((await child.exited).code).toBe(78);
    expect(child.output()).toMatch(/bad configuration: WARMUP_CRON: "half past ten"/);
  });
});

describe('npm run cli -- cache:warm', () => {
  /** The CLI in its own process, on the test's database and on prefixes of its own. */
  function cli(args: string[], env: Record<string, string> = {}): { child: Child; cachePrefix: string } {
    const cachePrefix = `courier-test-cli-${randomBytes(5).toString('hex')}`;
    prefixes.push(cachePrefix);
    const child = runScript('workers/cli.ts', args, {
      MYSQL_URL: web.database.mysqlUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: ownQueuePrefix(),
      CACHE_PREFIX: cachePrefix,
      ...env,
    });
    children.push(child);
    return { child, cachePrefix };
  }

  it('warms the cache in its own process and prints what it loaded', async () => {
    const seeded = await seedOrders();
    const { child, cachePrefix } = cli(['cache:warm']);
    const { code } = await child.exited;
    expect(code, child.output()).toBe(0);
    const active = activeIds(seeded).length;
    const summary = new RegExp(`warmed the cache \\(${cachePrefix}\\) in (\\d+) ms: ${active} active orders \\(${active} written.*\\), 3 merchants, 5 riders`);
    expect(child.output()).toMatch(summary);
    console.log(`cli: ${child.output().trim().split('\n').at(-1)}`);
    const cliCache = new OrderCache(redis, { prefix: cachePrefix, ttlMs: 60_000, finalTtlMs: 60_000 });
    const id = activeIds(seeded)[0]!;
    expect(await cliCache.get(id)).toMatchObject({ kind: 'hit', record: { order: { id, version: seeded.get(id)!.version } } });
  });

  it('explains itself with --help, and exits 1 with the reason when Redis is away', async () => {
    const help = cli(['cache:warm', '--help']).child;
    expect((await help.exited).code).toBe(0);
    expect(help.output()).toMatch(/Usage: courier cache:warm \[options\]/);
    expect(help.output()).toMatch(/--page-size <rows>/);

    const away = cli(['cache:warm'], { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` }).child;
    expect((await away.exited).code).toBe(1);
    expect(away.output()).toMatch(/courier: .*ECONNREFUSED/);
  });
});
