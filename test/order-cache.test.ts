import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { OrderLocks } from '../shared/cache/order-locks.ts';
import { LockTimeoutError } from '../shared/errors/index.ts';
import { changeOrder, type OrderChangeDeps } from '../shared/orders/change-order.ts';
import { readOrder, type OrderRecord, type OrderView } from '../shared/orders/read-order.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const prefix = `courier-test-cache-${randomBytes(5).toString('hex')}`;
let redis: Redis;
let cache: OrderCache;
let locks: OrderLocks;
let web: TestWeb;
let deps: OrderChangeDeps;

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL);
  cache = new OrderCache(redis, { prefix, ttlMs: 60_000 });
  locks = new OrderLocks(redis, { prefix, lockTimeoutMs: 2000, acquireTimeoutMs: 1000 });
  web = await createTestWeb();
  deps = { db: web.database.db, cache, locks, publisher: redis, invalidationChannel: `${prefix}:invalidate` };
});

afterAll(async () => {
  await web?.close();
  await deleteKeysWithPrefix(prefix);
  redis?.disconnect();
});

function fakeOrder(id: string, version: number): OrderRecord {
  return { clientId: '1', order: { id, version, status: 'CREATED' } as OrderView };
}

describe('OrderCache: the compare-and-set', () => {
  it('never lets a cached version go backwards', async () => {
    expect(await cache.fill(fakeOrder('101', 2), await cache.epoch())).toBe(true);
    expect(await cache.fill(fakeOrder('101', 1), await cache.epoch())).toBe(false);
    expect(await cache.fill(fakeOrder('101', 2), await cache.epoch())).toBe(false);
    expect(await cache.get('101')).toMatchObject({ kind: 'hit', record: { order: { version: 2 } } });
  });

  it('a stale mark of version N refuses N itself and lets only a newer version in', async () => {
    await cache.fill(fakeOrder('102', 1), await cache.epoch());
    await cache.invalidate('102', 1);
    expect(await cache.get('102')).toEqual({ kind: 'stale', version: 1 });
    expect(await cache.fill(fakeOrder('102', 1), await cache.epoch())).toBe(false); // a reader who loaded v1 a moment ago
    expect(await cache.fill(fakeOrder('102', 2), await cache.epoch())).toBe(true);
    await cache.invalidate('102', 1); // a late mark of an older version changes nothing
    expect(await cache.get('102')).toMatchObject({ kind: 'hit', record: { order: { version: 2 } } });
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

describe('OrderCache.fillMany (warm-up)', () => {
  it('writes a batch in one round trip, still never going backwards', async () => {
    await cache.fill(fakeOrder('151', 5), await cache.epoch());
    const written = await cache.fillMany([fakeOrder('150', 1), fakeOrder('151', 4), fakeOrder('152', 3)], await cache.epoch());
    expect(written).toBe(2);
    expect(await cache.get('151')).toMatchObject({ kind: 'hit', record: { order: { version: 5 } } });
    expect(await cache.get('152')).toMatchObject({ kind: 'hit', record: { order: { version: 3 } } });
  });
});

describe('OrderLocks', () => {
  it('serialises the holders of one order', async () => {
    const trail: string[] = [];
    let releaseFirst!: () => void;
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    let firstIn!: () => void;
    const firstEntered = new Promise<void>((resolve) => (firstIn = resolve));
    const first = locks.withLock('201', async () => {
      trail.push('first in');
      firstIn();
      await firstHolds;
      trail.push('first out');
    });
    await firstEntered;
    const second = locks.withLock('201', async () => void trail.push('second in'));
    releaseFirst();
    await Promise.all([first, second]);
    expect(trail).toEqual(['first in', 'first out', 'second in']);
  });

  it('bounds the wait: a lock held too long is a LockTimeoutError, and nothing ran', async () => {
    const patient = new OrderLocks(redis, { prefix, lockTimeoutMs: 5000, acquireTimeoutMs: 200 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holder = patient.withLock('202', async () => {
      entered();
      await held;
    });
    await inside;
    let ran = false;
    await expect(patient.withLock('202', async () => void (ran = true))).rejects.toBeInstanceOf(LockTimeoutError);
    expect(ran).toBe(false);
    release();
    await holder;
  });

  it('a holder whose lock was taken from it is told (its signal aborts), and its release leaves the new holder alone', async () => {
    const quick = new OrderLocks(redis, { prefix, lockTimeoutMs: 300, acquireTimeoutMs: 1000 });
    const key = `mutex:${prefix}:lock:order:203`; // redis-semaphore prefixes its keys with mutex:
    try {
      await quick.withLock('203', async ({ signal }) => {
        // Held past its TTL by renewal (its TTL seen going back up three times): the signal stays quiet.
        let renewals = 0;
        let last = await redis.pttl(key);
        await vi.waitFor(
          async () => {
            const ttl = await redis.pttl(key);
            if (ttl > last) renewals += 1;
            last = ttl;
            expect(renewals).toBeGreaterThanOrEqual(3);
          },
          { timeout: 5000, interval: 10 },
        );
        expect(signal.aborted).toBe(false);
        // Another holder takes it, as after a pause past its TTL: the holder hears of it within a few TTLs.
        await redis.set(key, 'another-holder', 'PX', 10_000);
        await vi.waitFor(() => expect(signal.aborted).toBe(true), { timeout: 3000, interval: 5 });
        expect(String(signal.reason)).toMatch(/lost/i);
      });
      expect(await redis.get(key)).toBe('another-holder');
    } finally {
      await redis.del(key);
    }
  });
});

describe('changeOrder: lock, mark stale, update, reload', () => {
  it('leaves the cache at the new version, and a reader who loaded the old row cannot put it back', async () => {
    const id = await web.postOrder();
    const stale = (await readOrder(web.database.db, id))!; // a reader loads v1 ...
    const result = await changeOrder(deps, { orderId: id, to: 'CANCELLED', actor: 'test' });
    expect(result.kind).toBe('done');
    expect(await cache.fill(stale, await cache.epoch())).toBe(false); // ... and arrives late with it
    expect(await cache.get(id)).toMatchObject({ kind: 'hit', record: { clientId: web.clientId, order: { id, status: 'CANCELLED', version: 2 } } });
  });

  it('an illegal change leaves the row and lets its version be cached again', async () => {
    const id = await web.postOrder();
    const result = await changeOrder(deps, { orderId: id, to: 'DELIVERED', actor: 'test' });
    expect(result.kind).toBe('illegal');
    expect(await cache.get(id)).toEqual({ kind: 'miss' });
    expect(await cache.fill((await readOrder(web.database.db, id))!, await cache.epoch())).toBe(true);
  });

  it('publishes an invalidation with the new version', async () => {
    const id = await web.postOrder();
    const subscriber = new Redis(TEST_REDIS_URL);
    try {
      await subscriber.subscribe(`${prefix}:invalidate`);
      const message = new Promise<string>((resolve) => subscriber.on('message', (_channel, text) => resolve(text)));
      await changeOrder(deps, { orderId: id, to: 'CANCELLED', actor: 'test' });
      expect(await message).toBe(`${id}:2`);
    } finally {
      subscriber.disconnect();
    }
  });
});
