import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { OrderReader } from '../shared/cache/order-reader.ts';
import { invalidationChannel } from '../shared/orders/order-writer.ts';
import { readOrder } from '../shared/orders/read-order.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { runTsx, type Child } from './support/child-process.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const LOCK_TTL_MS = 500;
const L1_TTL_MS = 800;
const HOT_ORDERS = 4;

interface WriteReturned {
  readonly orderId: string;
  readonly version: number;
  readonly at: number;
}
interface Read {
  readonly stream: string;
  readonly source: string;
  readonly orderId: string;
  readonly version: number;
  readonly startedAt: number;
}

let redis: PrivateRedis;
let web: TestWeb;
let orderIds: string[];
const writers: Child[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  web = await createTestWeb({ redisUrl: redis.url, lockTtlMs: LOCK_TTL_MS });
  orderIds = [];
  for (let i = 0; i < HOT_ORDERS; i++) {
    const id = await web.postOrder();
    await transitionOrder(web.runtime.writer, { orderId: id, to: 'PRICING_FAILED' }, { actor: 'test', waitMs: 1000 });
    orderIds.push(id);
  }
});

afterAll(async () => {
  for (const writer of writers) writer.kill();
  await Promise.all(writers.map((writer) => writer.exited));
  await web?.close();
  await redis?.stop();
});

function startWriter(fault: 'none' | 'pause' | 'crash'): Child {
  const child = runTsx('test/support/cache-writer.ts', [], {
    MYSQL_URL: web.config.mysqlUrl,
    REDIS_URL: redis.url,
    CACHE_PREFIX: web.config.cachePrefix,
    LOCK_TTL_MS: String(LOCK_TTL_MS),
    LOCK_WAIT_MS: '3000',
    ORDER_IDS: orderIds.join(','),
    FAULT: fault,
  });
  writers.push(child);
  return child;
}

function writesOf(child: Child): WriteReturned[] {
  return child
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{"t":"write"'))
    .map((line) => JSON.parse(line) as WriteReturned);
}

describe('the cache under concurrent writers and readers, with faults', () => {
  it('never serves an older version after a write returned, never goes backwards, and ends equal to MySQL', async () => {
    const logger = pino({ level: 'silent' });
    const cacheRedis = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    cacheRedis.on('error', () => undefined);
    const cache = new OrderCache(cacheRedis, { prefix: web.config.cachePrefix, ttlMs: 60_000, finalTtlMs: 60_000 });
    const subscriber = new Redis(redis.url, { retryStrategy: () => 50 });
    subscriber.on('error', () => undefined);
    // "Another process": a reader with a memory of its own, told of writes by the invalidations.
    const other = new OrderReader({
      cache,
      primary: web.database.db,
      subscriber,
      invalidationChannel: invalidationChannel(web.config),
      l1TtlMs: L1_TTL_MS,
      l1Max: 100,
      logger,
    });
    await other.start();

    const reads: Read[] = [];
    let running = true;
    const pick = () => orderIds[Math.floor(Math.random() * orderIds.length)]!;
    const directReads = (async () => {
      while (running) {
        const orderId = pick();
        let startedAt = Date.now();
        const cached = await cache.get(orderId).catch(() => undefined);
        if (cached?.kind === 'hit') reads.push({ stream: 'direct', source: 'l2', orderId, version: cached.record.order.version, startedAt });
        startedAt = Date.now();
        const row = await readOrder(web.database.db, orderId);
        reads.push({ stream: 'direct', source: 'mysql', orderId, version: row!.order.version, startedAt });
      }
    })();
    const otherReads = (async () => {
      while (running) {
        const orderId = pick();
        const startedAt = Date.now();
        const { record, source } = await other.get(orderId).catch(() => ({ record: undefined, source: 'error' }));
        if (record) reads.push({ stream: 'other', source, orderId, version: record.order.version, startedAt });
        await new Promise((resolve) => setTimeout(resolve, 1)); // a reader's pace, not synchronisation
      }
    })();

    const steady = [startWriter('none'), startWriter('none')];
    await Promise.all(steady.map((w) => w.waitForLine(/"t":"ready"/, 20_000)));

    // Fault 1: a lock holder paused (SIGSTOP) past its lock's TTL, between its lock and its update.
    const paused = startWriter('pause');
    await paused.waitForLine(/"t":"holding"/, 20_000);
    paused.process.kill('SIGSTOP');
    const writesBeforePause = steady.flatMap(writesOf).length;
    await new Promise((resolve) => setTimeout(resolve, LOCK_TTL_MS * 3)); // the fault: stopped past its TTL
    expect(steady.flatMap(writesOf).length).toBeGreaterThan(writesBeforePause); // the others went on without it
    paused.process.kill('SIGCONT');

    // Fault 2: a writer killed between its update (committed) and its cache reload.
    const crashed = startWriter('crash');
    expect((await crashed.exited).signal).toBe('SIGKILL');
    expect(crashed.output()).toMatch(/"t":"crashing"/);

    // Fault 3: Redis restarted, empty (ours keeps nothing on disk).
    await redis.crash();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the fault: Redis away for a moment
    await redis.restart();
    const writesAfterRestart = steady.flatMap(writesOf).length;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // load after the restart
    expect(steady.flatMap(writesOf).length).toBeGreaterThan(writesAfterRestart);

    for (const writer of [...steady, paused]) writer.process.kill('SIGTERM');
    await Promise.all([...steady, paused].map((writer) => writer.exited));
    running = false;
    await Promise.all([directReads, otherReads]);

    const writes = [...steady, paused].flatMap(writesOf);
    expect(writes.length).toBeGreaterThan(20);
    expect(reads.length).toBeGreaterThan(200);

    // The highest version of an order whose write had returned before a given moment.
    const returnedBefore = (orderId: string, moment: number): number => {
      let floor = 0;
      for (const w of writes) if (w.orderId === orderId && w.at < moment && w.version > floor) floor = w.version;
      return floor;
    };

    // No read from L2 or MySQL that started after a write returned saw an older version.
    const violations: string[] = [];
    for (const read of reads.filter((r) => r.source !== 'l1')) {
      const floor = returnedBefore(read.orderId, read.startedAt);
      if (read.version < floor) violations.push(`${read.stream}/${read.source} read v${read.version} of ${read.orderId} after v${floor} returned`);
    }
    expect(violations.slice(0, 5)).toEqual([]);

    // No reader ever saw a version go backwards.
    for (const stream of ['direct', 'other']) {
      for (const source of stream === 'direct' ? ['l2', 'mysql'] : ['any']) {
        for (const orderId of orderIds) {
          const seen = reads
            .filter((r) => r.stream === stream && r.orderId === orderId && (source === 'any' || r.source === source))
            .map((r) => r.version);
          for (let i = 1; i < seen.length; i++) expect(seen[i]!, `${stream}/${source} ${orderId}`).toBeGreaterThanOrEqual(seen[i - 1]!);
        }
      }
    }

    // The other process's memory lagged at most until its invalidation or its TTL.
    let staleWindowMs = 0;
    for (const read of reads.filter((r) => r.stream === 'other' && r.source === 'l1')) {
      let firstNewer = Infinity; // when the first write newer than what this read saw returned
      for (const w of writes) {
        if (w.orderId === read.orderId && w.at < read.startedAt && w.version > read.version && w.at < firstNewer) firstNewer = w.at;
      }
      if (firstNewer !== Infinity) staleWindowMs = Math.max(staleWindowMs, read.startedAt - firstNewer);
    }
    console.log(
      `cache consistency: ${writes.length} writes, ${reads.length} reads; longest stale window of another process's L1: ${staleWindowMs} ms (L1 TTL ${L1_TTL_MS} ms)`,
    );
    expect(staleWindowMs).toBeLessThanOrEqual(L1_TTL_MS);

    // After the load, the cache equals MySQL for every key (a key marked stale by the crashed
    // writer and not written since is refilled by the next read).
    for (const orderId of orderIds) {
      const row = (await readOrder(web.database.db, orderId))!;
      let cached = await cache.get(orderId);
      if (cached.kind !== 'hit') {
        await cache.fill(row, await cache.epoch());
        cached = await cache.get(orderId);
      }
      expect(cached).toEqual({ kind: 'hit', record: row });
    }

    await other.close();
    cacheRedis.disconnect();
  }, 60_000);
});
