import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { OrderReader } from '../shared/cache/order-reader.ts';
import { invalidationChannel } from '../shared/orders/order-writer.ts';
import { readOrder } from '../shared/orders/read-order.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { runScript, type Child } from './support/child-process.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const LOCK_TTL_MS = 1000;
const L1_TTL_MS = 800;
const HOT_ORDERS = 4;
/** Reads each stream must have made from each source before its checks mean anything. */
const MIN_SAMPLES = 25;
/** The (stream, source) pairs the checks read: the direct reads of L2 and MySQL, and another process's reader. */
const SOURCES = ['direct/l2', 'direct/mysql', 'other/l1', 'other/l2', 'other/mysql'] as const;

interface WriteReturned {
  readonly orderId: string;
  readonly version: number;
  readonly at: number;
}
/** An invalidation the other process's reader received. */
interface Heard {
  readonly orderId: string;
  readonly version: number;
  readonly at: number;
}
interface Read {
  readonly stream: 'direct' | 'other';
  readonly source: string;
  readonly orderId: string;
  readonly version: number;
  readonly startedAt: number;
}

let redis: PrivateRedis;
let web: TestWeb;
/** Changed over and over by the steady writers. */
let hotOrders: string[];
/** One order per fault, written only by the faulty writer and the one that takes over from it. */
let faultOrders: { pauseBeforeUpdate: string; pauseBeforeReload: string; crash: string };
let allOrders: string[];
const writers: Child[] = [];
/** Resolves once a writer has exited and its output has been read to the end ('exit' may come first). */
const finished = new Map<Child, Promise<{ code: number | null; signal: NodeJS.Signals | null }>>();

beforeAll(async () => {
  redis = await PrivateRedis.start();
  web = await createTestWeb({ redisUrl: redis.url, lockTtlMs: LOCK_TTL_MS });
  const ids: string[] = [];
  for (let i = 0; i < HOT_ORDERS + 3; i++) {
    const id = await web.postOrder();
    await transitionOrder(web.runtime.writer, { orderId: id, to: 'PRICING_FAILED' }, { actor: 'test', waitMs: 1000 });
    ids.push(id);
  }
  hotOrders = ids.slice(0, HOT_ORDERS);
  const [pauseBeforeUpdate, pauseBeforeReload, crash] = ids.slice(HOT_ORDERS);
  faultOrders = { pauseBeforeUpdate: pauseBeforeUpdate!, pauseBeforeReload: pauseBeforeReload!, crash: crash! };
  allOrders = ids;
});

afterAll(async () => {
  for (const writer of writers) writer.kill();
  await Promise.all(writers.map((writer) => writer.exited));
  await web?.close();
  await redis?.stop();
});

function startWriter(orderIds: readonly string[], opts: { once?: boolean; fault?: string } = {}): Child {
  const child = runScript('test/support/cache-writer.ts', [], {
    MYSQL_URL: web.config.mysqlUrl,
    REDIS_URL: redis.url,
    CACHE_PREFIX: web.config.cachePrefix,
    LOCK_TTL_MS: String(LOCK_TTL_MS),
    LOCK_WAIT_MS: '3000',
    ORDER_IDS: orderIds.join(','),
    ONCE: opts.once ? '1' : '0',
    FAULT: opts.fault ?? 'none',
  });
  writers.push(child);
  finished.set(child, new Promise((resolve) => child.process.once('close', (code, signal) => resolve({ code, signal }))));
  return child;
}

function exitOf(child: Child) {
  return finished.get(child)!;
}

function linesOf<T>(child: Child, type: string): T[] {
  return child
    .output()
    .split('\n')
    .filter((line) => line.startsWith(`{"t":"${type}"`))
    .map((line) => JSON.parse(line) as T);
}
const writesOf = (child: Child) => linesOf<WriteReturned>(child, 'write');
const errorsOf = (child: Child) => linesOf<{ orderId: string; message: string; at: number }>(child, 'error');

/** redis-semaphore's key for an order's lock (OrderLocks: `<cache prefix>:lock:order:<id>`, under its `mutex:` prefix). */
function lockKey(orderId: string): string {
  return `${web.config.cachePrefix}:lock:order:${orderId}`;
}

/** The state letter of a process in /proc: 'T' once a SIGSTOP has taken effect. */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
}

/**
 * Two streams of reads until stop(): "direct" reads L2 and then MySQL, as anyone reading Redis or
 * the database would; "other" reads through an OrderReader of its own (another process: its own
 * memory, told of writes by the invalidations).
 */
function startReaders(cache: OrderCache, other: OrderReader) {
  const reads: Read[] = [];
  let running = true;
  const failures: unknown[] = [];
  const pick = () => allOrders[Math.floor(Math.random() * allOrders.length)]!;
  const direct = (async () => {
    while (running) {
      const orderId = pick();
      let startedAt = Date.now();
      const cached = await cache.get(orderId).catch(() => undefined); // Redis away during its restart
      if (cached?.kind === 'hit') reads.push({ stream: 'direct', source: 'l2', orderId, version: cached.record.order.version, startedAt });
      startedAt = Date.now();
      const row = await readOrder(web.database.db, orderId);
      reads.push({ stream: 'direct', source: 'mysql', orderId, version: row!.order.version, startedAt });
    }
  })().catch((error: unknown) => void failures.push(error));
  const others = (async () => {
    while (running) {
      const orderId = pick();
      const startedAt = Date.now();
      const { record, source } = await other.get(orderId).catch(() => ({ record: undefined, source: 'error' }));
      if (record) reads.push({ stream: 'other', source, orderId, version: record.order.version, startedAt });
      await new Promise((resolve) => setTimeout(resolve, 1)); // a reader's pace, not synchronisation
    }
  })().catch((error: unknown) => void failures.push(error));
  return {
    reads,
    count: (source: string) => reads.filter((read) => `${read.stream}/${read.source}` === source).length,
    /** Stops both streams and waits for their last read; resolves with what made either of them stop early. */
    async stop(): Promise<unknown[]> {
      running = false;
      await Promise.all([direct, others]);
      return failures;
    },
  };
}

/**
 * The checks on what was read, against the writes that returned: each stream read each source
 * MIN_SAMPLES times at least; no read from L2 or MySQL that started after a write returned saw an
 * older version; no reader saw a version go backwards; the other process's memory lagged at most
 * until its invalidation (`heard`), and never longer than its TTL.
 */
function checkReads(reads: readonly Read[], writes: readonly WriteReturned[], heard: readonly Heard[]) {
  const counts = Object.fromEntries(SOURCES.map((source) => [source, reads.filter((r) => `${r.stream}/${r.source}` === source).length]));
  for (const source of SOURCES) expect(counts[source], `reads from ${source}`).toBeGreaterThanOrEqual(MIN_SAMPLES);

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

  // No reader ever saw a version go backwards: per order, the direct reads of each source, and
  // everything the other process's reader answered.
  const backwards: string[] = [];
  for (const stream of ['direct/l2', 'direct/mysql', 'other/any']) {
    const seen = new Map<string, number>();
    for (const r of reads) {
      if (stream === 'other/any' ? r.stream !== 'other' : `${r.stream}/${r.source}` !== stream) continue;
      const before = seen.get(r.orderId) ?? 0;
      if (r.version < before) backwards.push(`${stream} ${r.orderId}: v${before} then v${r.version}`);
      else seen.set(r.orderId, r.version);
    }
  }
  expect(backwards.slice(0, 5)).toEqual([]);

  // The other process's memory lagged at most until its invalidation: no copy read from it after
  // the invalidation of a newer version had arrived ...
  const pastInvalidation: string[] = [];
  for (const read of reads.filter((r) => r.stream === 'other' && r.source === 'l1')) {
    const told = heard.find((h) => h.orderId === read.orderId && h.version > read.version && h.at < read.startedAt);
    if (told) pastInvalidation.push(`l1 read v${read.version} of ${read.orderId} ${read.startedAt - told.at} ms after hearing of v${told.version}`);
  }
  expect(pastInvalidation.slice(0, 5)).toEqual([]);
  // ... and never longer than its TTL.
  let staleWindowMs = 0;
  for (const read of reads.filter((r) => r.stream === 'other' && r.source === 'l1')) {
    let firstNewer = Infinity; // when the first write newer than what this read saw returned
    for (const w of writes) {
      if (w.orderId === read.orderId && w.at < read.startedAt && w.version > read.version && w.at < firstNewer) firstNewer = w.at;
    }
    if (firstNewer !== Infinity) staleWindowMs = Math.max(staleWindowMs, read.startedAt - firstNewer);
  }
  expect(staleWindowMs).toBeLessThanOrEqual(L1_TTL_MS);
  return { counts, staleWindowMs };
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
    let readers: ReturnType<typeof startReaders> | undefined;
    try {
      await other.start();
      // When the other process heard of each write (its reader's own listener runs first).
      const heard: Heard[] = [];
      subscriber.on('message', (_channel: string, message: string) => {
        const [orderId, version] = message.split(':');
        heard.push({ orderId: orderId!, version: Number(version), at: Date.now() });
      });
      readers = startReaders(cache, other);
      const { reads } = readers;

      // The load: two writers changing the hot orders over and over.
      const steady = [startWriter(hotOrders), startWriter(hotOrders)];
      await vi.waitFor(() => expect(steady.map((w) => writesOf(w).length >= 10)).toEqual([true, true]), { timeout: 30_000, interval: 20 });

      // Fault 1: Redis restarted, empty (ours keeps nothing on disk). The writers must notice it
      // gone, then write every hot order again once it is back.
      const crashedAt = Date.now();
      await redis.crash();
      await vi.waitFor(() => expect(steady.map((w) => errorsOf(w).some((e) => e.at >= crashedAt))).toEqual([true, true]), {
        timeout: 10_000,
        interval: 10,
      });
      await redis.restart();
      const restartedAt = Date.now();
      await vi.waitFor(
        () => {
          const written = new Set(steady.flatMap(writesOf).filter((w) => w.at > restartedAt).map((w) => w.orderId));
          expect(hotOrders.filter((id) => !written.has(id))).toEqual([]);
        },
        { timeout: 20_000, interval: 20 },
      );

      // Fault 2: lock holders stopped (SIGSTOP) past their lock's TTL, one between marking the
      // entry stale and updating the row, one between its COMMIT and its cache reload (it holds the
      // version it committed, older than the one the next writer will have cached). Fault 3: a
      // writer killed (SIGKILL) between its COMMIT and its cache reload.
      const held = [
        { orderId: faultOrders.pauseBeforeUpdate, writer: startWriter([faultOrders.pauseBeforeUpdate], { once: true, fault: 'pause-before-update' }) },
        { orderId: faultOrders.pauseBeforeReload, writer: startWriter([faultOrders.pauseBeforeReload], { once: true, fault: 'pause-before-reload' }) },
      ];
      const crashed = startWriter([faultOrders.crash], { once: true, fault: 'crash' });
      for (const { orderId, writer } of held) {
        // The writer says it holds the lock and waits there (for SIGUSR2, which has not been sent).
        await writer.waitForLine(/"t":"holding"/, 30_000);
        const token = await cacheRedis.get(lockKey(orderId));
        expect(token, `${orderId}: the writer's lock, while it says it holds it`).not.toBeNull();
        writer.process.kill('SIGSTOP');
        await vi.waitFor(() => expect(processState(writer.process.pid!)).toBe('T'), { timeout: 5000, interval: 5 });
        // The stop landed while it held the lock: its token is still there, and still alive.
        expect(await cacheRedis.get(lockKey(orderId)), `${orderId}: the lock when the SIGSTOP landed`).toBe(token);
        expect(await cacheRedis.pttl(lockKey(orderId))).toBeGreaterThan(0);
      }
      expect((await exitOf(crashed)).signal).toBe('SIGKILL');
      expect(crashed.output()).toMatch(/"t":"crashing"/);

      // Stopped, the holders cannot renew their locks: both expire ...
      await vi.waitFor(
        async () => expect(await Promise.all(held.map(({ orderId }) => cacheRedis.exists(lockKey(orderId))))).toEqual([0, 0]),
        { timeout: LOCK_TTL_MS + 10_000, interval: 20 },
      );
      for (const { writer } of held) expect(processState(writer.process.pid!)).toBe('T');
      // ... and another writer goes on without them, on the very orders they held.
      const takeover = startWriter(held.map(({ orderId }) => orderId), { once: true });
      expect(await exitOf(takeover), takeover.output()).toEqual({ code: 0, signal: null });
      const takenOver = writesOf(takeover);
      expect(takenOver.map((w) => w.orderId)).toEqual(held.map(({ orderId }) => orderId));

      // Let them go on, late.
      for (const { writer } of held) {
        writer.process.kill('SIGCONT');
        writer.process.kill('SIGUSR2');
      }
      for (const { writer } of held) expect(await exitOf(writer), writer.output()).toEqual({ code: 0, signal: null });
      // The one stopped before its update either finds its lock lost and stops, or (its guarded
      // update missing the row's new version) reads it again and writes after the takeover.
      const [beforeUpdate, beforeReload] = held.map(({ writer }) => writer);
      const lateUpdate = [...writesOf(beforeUpdate!), ...errorsOf(beforeUpdate!)];
      expect(lateUpdate, beforeUpdate!.output()).toHaveLength(1);
      if ('message' in lateUpdate[0]!) expect(lateUpdate[0].message).toMatch(/lost the lock/);
      else expect(lateUpdate[0]!.version).toBeGreaterThan(takenOver[0]!.version);
      // The one stopped before its reload had committed a version older than the one now cached:
      // its reload is the late write the compare-and-set must refuse.
      expect(errorsOf(beforeReload!)).toEqual([]);
      const [lateReload] = writesOf(beforeReload!);
      expect(lateReload!.version).toBeLessThan(takenOver[1]!.version);
      const faultsOverAt = Date.now();

      // Enough reads of every kind, and L2 reads of each fault order made after its writers returned.
      await vi.waitFor(
        () => {
          expect(SOURCES.filter((source) => readers!.count(source) < MIN_SAMPLES)).toEqual([]);
          const readAfter = new Set(reads.filter((r) => r.source === 'l2' && r.stream === 'direct' && r.startedAt > faultsOverAt).map((r) => r.orderId));
          expect(Object.values(faultOrders).filter((id) => !readAfter.has(id))).toEqual([]);
        },
        { timeout: 20_000, interval: 20 },
      );

      for (const writer of steady) writer.process.kill('SIGTERM');
      for (const writer of steady) expect(await exitOf(writer), writer.output().slice(-2000)).toEqual({ code: 0, signal: null });
      checkReads([...reads], writers.flatMap(writesOf), [...heard]); // what was read under the load: the clearest report of a violation

      // After the load the cache equals MySQL for every order. A miss (the crashed writer's stale
      // mark, Redis restarted) is filled by the readers still reading, through the read path; a
      // stale mark of the row's own version (a change that failed after marking) is never served.
      const settled = async (orderId: string) => {
        const row = (await readOrder(web.database.db, orderId))!;
        const cached = await cache.get(orderId);
        if (cached.kind === 'stale' && cached.version === row.order.version) return 'stale at its version';
        return cached.kind === 'hit' && JSON.stringify(cached.record) === JSON.stringify(row) ? 'equal' : JSON.stringify({ cached, row });
      };
      await vi.waitFor(
        async () => {
          const states = await Promise.all(allOrders.map(settled));
          expect(states.filter((state) => state !== 'equal' && state !== 'stale at its version')).toEqual([]);
        },
        { timeout: 10_000, interval: 20 },
      );
      expect(await readers.stop()).toEqual([]);
      // Nothing runs now: the cache as it is left.
      for (const orderId of allOrders) {
        const row = (await readOrder(web.database.db, orderId))!;
        const cached = await cache.get(orderId);
        if (cached.kind === 'stale') expect(cached.version, orderId).toBe(row.order.version);
        else expect(cached, orderId).toEqual({ kind: 'hit', record: row });
      }

      const { counts, staleWindowMs } = checkReads(reads, writers.flatMap(writesOf), heard);
      console.log(
        `cache consistency: ${writers.flatMap(writesOf).length} writes, ${reads.length} reads (${JSON.stringify(counts)}); ` +
          `longest stale window of another process's L1: ${staleWindowMs} ms (L1 TTL ${L1_TTL_MS} ms)`,
      );
    } finally {
      await readers?.stop();
      await other.close();
      cacheRedis.disconnect();
    }
  }, 120_000);
});
