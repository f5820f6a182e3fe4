import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FILL_AFTER_READ_MAX_MS, OrderCache, STALE_MARK_TTL_MS } from '../shared/cache/order-cache.ts';
import { createOrderLocks } from '../shared/cache/order-locks.ts';
import type { RedisLocks } from '../shared/cache/redis-locks.ts';
import { readOrder, type OrderRecord, type OrderView } from '../shared/orders/read-order.ts';
import { transitionOrder, transitionOrders } from '../shared/orders/transition-orders.ts';
import type { OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const prefix = `courier-test-cache-${randomBytes(5).toString('hex')}`;
let redis: Redis;
let cache: OrderCache;
let locks: RedisLocks;
let web: TestWeb;
let writer: OrderWriterDeps;

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL);
  cache = new OrderCache(redis, { prefix, ttlMs: 60_000, finalTtlMs: 5_000 });
  locks = createOrderLocks(redis, { prefix, ttlMs: 2000 });
  web = await createTestWeb();
  writer = { db: web.database.db, cache, locks, publisher: redis, invalidationChannel: `${prefix}:invalidate` };
});

afterAll(async () => {
  await web?.close();
  await deleteKeysWithPrefix(prefix);
  redis?.disconnect();
});

function fakeOrder(id: string, version: number, status = 'CREATED'): OrderRecord {
  return { clientId: '1', order: { id, version, status } as OrderView };
}

const cancel = (orderId: string) => transitionOrder(writer, { orderId, to: 'CANCELLED' }, { actor: 'test', waitMs: 1000 });

describe('OrderCache: the compare-and-set', () => {
  it('never lets a cached version go backwards', async () => {
    expect(await cache.fill(fakeOrder('101', 2), await cache.epoch())).toBe(true);
    expect(await cache.fill(fakeOrder('101', 1), await cache.epoch())).toBe(false);
    expect(await cache.fill(fakeOrder('101', 2), await cache.epoch())).toBe(false);
    expect(await cache.get('101')).toMatchObject({ kind: 'hit', record: { order: { version: 2 } } });
  });

  it('a stale mark of version N refuses N itself and lets only a newer version in', async () => {
    await cache.fill(fakeOrder('102', 1), await cache.epoch());
    expect(await cache.markStaleMany([{ id: '102', version: 1 }])).toEqual([true]); // it was cached
    expect(await cache.get('102')).toEqual({ kind: 'stale', version: 1 });
    expect(await cache.fill(fakeOrder('102', 1), await cache.epoch())).toBe(false); // a reader who loaded v1 a moment ago
    expect(await cache.fill(fakeOrder('102', 2), await cache.epoch())).toBe(true);
    expect(await cache.markStaleMany([{ id: '102', version: 1 }])).toEqual([true]); // a late mark of an older version...
    expect(await cache.get('102')).toMatchObject({ kind: 'hit', record: { order: { version: 2 } } }); // ...changes nothing
  });

  it('marks an order nobody cached with a short-lived mark, and says it was not cached', async () => {
    expect(await cache.markStaleMany([{ id: '103', version: 4 }])).toEqual([false]);
    expect(await cache.get('103')).toEqual({ kind: 'stale', version: 4 });
    expect(await cache.fill(fakeOrder('103', 4), await cache.epoch())).toBe(false);
    const ttl = await redis.pttl(cache.key('103'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(STALE_MARK_TTL_MS);
  });

  it('refuses a fill of a read older than a stale mark lives (it may predate a change whose mark is gone), and takes a fresh one', async () => {
    const epoch = await cache.epoch();
    expect(FILL_AFTER_READ_MAX_MS).toBeLessThan(STALE_MARK_TTL_MS);
    expect(await cache.fillMany([fakeOrder('106', 1)], epoch, performance.now() - FILL_AFTER_READ_MAX_MS - 1)).toBe(0);
    expect(await cache.get('106')).toEqual({ kind: 'miss' });
    expect(await cache.fill(fakeOrder('106', 1), epoch, performance.now() - FILL_AFTER_READ_MAX_MS + 500)).toBe(true);
  });

  it('keeps a delivered or cancelled order only for the final TTL', async () => {
    await cache.fillMany([fakeOrder('104', 1, 'PRICED'), fakeOrder('105', 1, 'DELIVERED')], await cache.epoch());
    expect(await redis.pttl(cache.key('104'))).toBeGreaterThan(5_000);
    expect(await redis.pttl(cache.key('105'))).toBeLessThanOrEqual(5_000);
  });
});

describe('OrderCache epochs', () => {
  it('refuses a fill read before Redis lost everything, even with no version left to compare', async () => {
    const before = await cache.epoch();
    await cache.fill(fakeOrder('160', 7), before);
    await deleteKeysWithPrefix(prefix); // Redis restarted empty (as ours does: no persistence)
    expect(await cache.fill(fakeOrder('160', 6), before)).toBe(false); // a reader that loaded v6 before
    expect(await cache.get('160')).toEqual({ kind: 'miss' });
    const after = await cache.epoch();
    expect(after).not.toBe(before);
    expect(await cache.fill(fakeOrder('160', 7), after)).toBe(true);
  });
});

describe('OrderCache.fillMany (warm-up, reloads)', () => {
  it('writes a batch in one round trip, still never going backwards', async () => {
    await cache.fill(fakeOrder('151', 5), await cache.epoch());
    const written = await cache.fillMany([fakeOrder('150', 1), fakeOrder('151', 4), fakeOrder('152', 3)], await cache.epoch());
    expect(written).toBe(2);
    expect(await cache.get('151')).toMatchObject({ kind: 'hit', record: { order: { version: 5 } } });
    expect(await cache.get('152')).toMatchObject({ kind: 'hit', record: { order: { version: 3 } } });
  });
});

describe('locks of many orders at once', () => {
  it('takes the free ones in one go and reports the held ones busy at once (waitMs 0)', async () => {
    const first = await locks.lock(['201', '202'], { waitMs: 0 });
    const second = await locks.lock(['202', '203'], { waitMs: 0 });
    try {
      expect(first.held).toEqual(['201', '202']);
      expect(second.held).toEqual(['203']);
      expect(second.busy).toEqual(['202']);
    } finally {
      await Promise.all([first.release(), second.release()]);
    }
    const after = await locks.lock(['202'], { waitMs: 0 });
    expect(after.held).toEqual(['202']); // released: free again
    await after.release();
  });

  it('a waiting caller gets a lock its holder releases within the wait, and not one held past it', async () => {
    const holder = await locks.lock(['211', '212'], { waitMs: 0 });
    const waiting = locks.lock(['211'], { waitMs: 5_000 });
    const impatient = await locks.lock(['212'], { waitMs: 100 });
    expect(impatient.busy).toEqual(['212']);
    await holder.release();
    const got = await waiting;
    expect(got.held).toEqual(['211']);
    await got.release();
  });

  it('only the holder releases: a holder paused past its TTL deletes nothing of its successor', async () => {
    const quick = createOrderLocks(redis, { prefix, ttlMs: 100_000 });
    const late = await quick.lock(['221'], { waitMs: 0 });
    await redis.del(`${prefix}:lock:order:221`); // its lock expired, as after a long pause...
    const successor = await quick.lock(['221'], { waitMs: 0 }); // ...and another writer took it
    expect(successor.held).toEqual(['221']);
    await late.release();
    expect(await redis.exists(`${prefix}:lock:order:221`)).toBe(1);
    await successor.release();
    expect(await redis.exists(`${prefix}:lock:order:221`)).toBe(0);
  });

  it('a holder keeps its locks while it holds them (renewed, its signal quiet), and is told when one is taken from it', async () => {
    const quick = createOrderLocks(redis, { prefix, ttlMs: 300 });
    const key = `${prefix}:lock:order:231`;
    const held = await quick.lock(['231'], { waitMs: 0 });
    try {
      // Three renewals seen from outside: the TTL jumps back up while the holder holds on.
      let renewals = 0;
      let last = await redis.pttl(key);
      await vi.waitFor(
        async () => {
          const now = await redis.pttl(key);
          if (now > last) renewals += 1;
          last = now;
          expect(renewals).toBeGreaterThanOrEqual(3);
        },
        { timeout: 5_000, interval: 20 },
      );
      expect(held.signal.aborted).toBe(false);
      await redis.set(key, 'someone else'); // expired under it and taken, as after a long pause
      await vi.waitFor(() => expect(held.signal.aborted).toBe(true), { timeout: 3_000, interval: 20 });
    } finally {
      await held.release();
    }
    expect(await redis.get(key)).toBe('someone else'); // the release left the new holder's lock alone
  });
});

describe('a lock holder paused past its TTL', () => {
  it('learns it synchronously before its next write, though its renewal timer has not run', async () => {
    const quick = createOrderLocks(redis, { prefix, ttlMs: 300 });
    const held = await quick.lock(['241'], { waitMs: 0 });
    try {
      expect(() => held.assertHeld()).not.toThrow();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400); // a pause: no timer runs
      expect(held.signal.aborted).toBe(false); // the renewal timer has not told it yet
      expect(() => held.assertHeld()).toThrow(/not renewed within their 300 ms TTL/);
    } finally {
      await held.release();
    }
  });
});

describe('the write routine: lock, mark stale, update, reload what was cached', () => {
  it('leaves a cached order at the new version, and a reader who loaded the old row cannot put it back', async () => {
    const id = await web.postOrder();
    const stale = (await readOrder(web.database.db, id))!; // a reader loads v1 ...
    await cache.fill(stale, await cache.epoch()); // ... and another one cached it
    expect((await cancel(id)).kind).toBe('done');
    expect(await cache.fill(stale, await cache.epoch())).toBe(false); // the first arrives late with v1
    expect(await cache.get(id)).toMatchObject({ kind: 'hit', record: { clientId: web.clientId, order: { id, status: 'CANCELLED', version: 2 } } });
  });

  it('writes no data for an order nobody cached, and a late reader of the old row still cannot put it back', async () => {
    const id = await web.postOrder();
    const stale = (await readOrder(web.database.db, id))!;
    expect((await cancel(id)).kind).toBe('done');
    expect(await cache.get(id)).toEqual({ kind: 'stale', version: 1 }); // only the short-lived mark
    expect(await cache.fill(stale, await cache.epoch())).toBe(false);
    expect(await cache.fill((await readOrder(web.database.db, id))!, await cache.epoch())).toBe(true); // a reader of v2 caches it
  });

  it('an illegal change writes nothing, in MySQL or Redis', async () => {
    const id = await web.postOrder();
    const result = await transitionOrder(writer, { orderId: id, to: 'DELIVERED' }, { actor: 'test', waitMs: 1000 });
    expect(result.kind).toBe('illegal');
    expect(await cache.get(id)).toEqual({ kind: 'miss' });
    expect((await readOrder(web.database.db, id))?.order.version).toBe(1);
  });

  it('publishes one invalidation for a batch, with every new version', async () => {
    const ids = [await web.postOrder(), await web.postOrder()];
    const subscriber = new Redis(TEST_REDIS_URL);
    try {
      await subscriber.subscribe(`${prefix}:invalidate`);
      const message = new Promise<string>((resolve) => subscriber.on('message', (_channel, text) => resolve(text)));
      await transitionOrders(writer, ids.map((orderId) => ({ orderId, to: 'CANCELLED' as const })), { actor: 'test', waitMs: 1000 });
      expect((await message).split(',').sort()).toEqual(ids.map((id) => `${id}:2`).sort());
    } finally {
      subscriber.disconnect();
    }
  });
});
