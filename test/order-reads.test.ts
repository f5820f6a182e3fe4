import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OrderReader, REFRESH_BATCH_MS } from '../shared/cache/order-reader.ts';
import { Authenticator } from '../shared/clients/authenticator.ts';
import { RecentWriters } from '../shared/http/recent-writers.ts';
import { createWebRuntime, type WebRuntime } from '../workers/web-runtime.ts';
import { invalidationChannel } from '../shared/orders/order-writer.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL } from './support/test-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

let web: TestWeb;
let other: WebRuntime | undefined;

beforeAll(async () => {
  web = await createTestWeb();
  await web.runtime.subscribed;
});

afterAll(async () => {
  await other?.close();
  await web?.close();
});

/**
 * A reader as another process has one: an empty memory of its own, reading the test's database
 * pool. Not subscribed to invalidations: as if every message to it were lost.
 */
function otherProcessReader(extra: Partial<ConstructorParameters<typeof OrderReader>[0]> = {}): OrderReader {
  return new OrderReader({
    ...extra,
    cache: web.runtime.writer.cache,
    primary: web.database.db,
    subscriber: new Redis(TEST_REDIS_URL),
    invalidationChannel: invalidationChannel(web.config),
    l1TtlMs: 1000,
    l1Max: 100,
    logger: pino({ level: 'silent' }),
  });
}

function get(runtime: WebRuntime, id: string, apiKey: string, headers: Record<string, string> = {}) {
  return runtime.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: { authorization: `Bearer ${apiKey}`, ...headers } });
}

function cancel(runtime: WebRuntime, id: string) {
  return runtime.app.inject({
    method: 'POST',
    url: `/v1/orders/${id}/events`,
    headers: { authorization: `Bearer ${web.apiKey}` },
    payload: { type: 'cancel' },
  });
}

describe('the read path', () => {
  it('reads MySQL once, then Redis (L2) or memory (L1)', async () => {
    const id = await web.postOrder();
    const reader = web.runtime.reader;
    expect((await reader.get(id)).source).toBe('mysql');
    expect((await reader.get(id)).source).toBe('l1');
    // Another process has nothing in memory but finds it in Redis.
    const fresh = otherProcessReader();
    try {
      expect(await fresh.get(id)).toMatchObject({ source: 'l2', record: { clientId: web.clientId, order: { id, version: 1 } } });
    } finally {
      await fresh.close();
    }
  });

  it('the lookups a cached read makes (its key, its order in L1, its recent writes) arm no timer: each checks the clock itself', async () => {
    const id = await web.postOrder();
    // The reader's clock stands still, so no copy comes due a refresh (which arms a batch timer).
    const reader = otherProcessReader({ now: () => 1_000 });
    const authenticator = new Authenticator(web.database.db, { ttlSeconds: 60 });
    const recent = new RecentWriters(5_000);
    try {
      await reader.get(id);
      expect(await authenticator.authenticate(web.apiKey)).toMatchObject({ id: web.clientId });
      recent.wrote(web.clientId);
      // lru-cache's default would remember the time for a millisecond and arm a timer to forget it.
      const timers = vi.spyOn(globalThis, 'setTimeout');
      try {
        for (let i = 0; i < 50; i++) {
          expect(reader.peek(id)?.order.id).toBe(id);
          expect(authenticator.peek(web.apiKey)?.id).toBe(web.clientId);
          expect(recent.wroteRecently(web.clientId)).toBe(true);
        }
        expect(timers).not.toHaveBeenCalled();
      } finally {
        timers.mockRestore();
      }
    } finally {
      await reader.close();
    }
  });

  it('a copy loaded while the invalidation of a newer version arrived answers its waiting reads but is not kept in memory', async () => {
    const id = await web.postOrder();
    await web.runtime.reader.get(id); // cached in Redis at version 1
    const fresh = otherProcessReader();
    try {
      const loading = fresh.get(id); // on its way to Redis ...
      fresh.invalidate(id, 2); // ... when a change to version 2 is announced
      expect(await loading).toMatchObject({ source: 'l2', record: { order: { version: 1 } } });
      expect(fresh.peek(id), 'version 1 kept in memory after hearing of version 2').toBeUndefined();
      // Without news, a load is kept as before.
      const again = otherProcessReader();
      try {
        await again.get(id);
        expect(again.peek(id)?.order.version).toBe(1);
      } finally {
        await again.close();
      }
    } finally {
      await fresh.close();
    }
  });

  it('a cold key under 1,000 concurrent readers costs one query', async () => {
    const id = await web.postOrder();
    const db = web.database.db;
    let orderQueries = 0;
    const count = (query: { sql: string }) => {
      if (/from `orders`/i.test(query.sql)) orderQueries += 1;
    };
    db.on('query', count);
    const reader = otherProcessReader();
    try {
      await web.forgetCached(id);
      const reads = await Promise.all(Array.from({ length: 1000 }, () => reader.get(id)));
      expect(reads.every((r) => r.record?.order.id === id)).toBe(true);
      expect(orderQueries).toBe(1);
    } finally {
      db.off('query', count);
      await reader.close();
    }
  });

  it('answers with an ETag of the version, 304 to If-None-Match, and a new tag after a change', async () => {
    const id = await web.postOrder();
    const first = await get(web.runtime, id, web.apiKey);
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('"v1"');
    const again = await get(web.runtime, id, web.apiKey, { 'if-none-match': '"v1"' });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect((await get(web.runtime, id, web.apiKey, { 'if-none-match': 'W/"v0", W/"v1"' })).statusCode).toBe(304);
    expect((await cancel(web.runtime, id)).statusCode).toBe(200);
    const changed = await get(web.runtime, id, web.apiKey, { 'if-none-match': '"v1"' });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers.etag).toBe('"v2"');
    expect(changed.json()).toMatchObject({ status: 'CANCELLED', version: 2 });
  });

  it('a version answers the body and tag made for it; a new version a new body, and an old tag then gets a 200 with it', async () => {
    const id = await web.postOrder();
    const first = await get(web.runtime, id, web.apiKey);
    const again = await get(web.runtime, id, web.apiKey);
    expect(again.body).toBe(first.body); // the same version: the same bytes, made once
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.json()).toEqual((await web.runtime.reader.get(id)).record!.order);

    expect((await cancel(web.runtime, id)).statusCode).toBe(200);
    const stale = await get(web.runtime, id, web.apiKey, { 'if-none-match': '"v1"' });
    expect(stale.statusCode).toBe(200);
    expect(stale.headers.etag).toBe('"v2"');
    expect(stale.json()).toMatchObject({ id, status: 'CANCELLED', version: 2 });
    expect(stale.json()).toEqual((await web.runtime.reader.get(id)).record!.order);
    expect(stale.body).not.toBe(first.body);
  });

  it('a 304 carries the tag and no body at all (no Content-Length of a serialized null)', async () => {
    const id = await web.postOrder();
    await get(web.runtime, id, web.apiKey);
    const notModified = await get(web.runtime, id, web.apiKey, { 'if-none-match': '"v1"' });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    expect(notModified.rawPayload.length).toBe(0);
    expect(notModified.headers['content-length']).toBeUndefined();
  });

  it("another client's order is a 404 whether or not this process holds it", async () => {
    const id = await web.postOrder();
    expect((await get(web.runtime, id, web.apiKey)).statusCode).toBe(200); // now in L1
    const theirs = await get(web.runtime, id, web.otherApiKey);
    expect(theirs.statusCode).toBe(404);
    expect(theirs.headers.etag).toBeUndefined();
  });

  it('a hot copy is refreshed ahead of its TTL in the background: kept while L2 holds its version, replaced when not, never past the TTL unchecked', async () => {
    const [id, other] = [await web.postOrder(), await web.postOrder()];
    await web.runtime.reader.get(id); // cached in Redis at version 1
    const t0 = 10_000; // lru-cache takes a start time of 0 for "no TTL"
    let now = t0;
    const refreshes: string[] = [];
    let refreshed: () => void = () => undefined;
    const reader = otherProcessReader({
      now: () => now,
      onRefresh: (outcome) => {
        refreshes.push(outcome);
        refreshed();
      },
    });
    const nextRefresh = () => new Promise<void>((resolve) => (refreshed = resolve));
    const askedL2 = vi.spyOn(web.runtime.writer.cache, 'getMany'); // still does its work: only watched
    // The batch's timer only: the reader's clients keep their real ones.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const batchSent = () => vi.advanceTimersByTime(REFRESH_BATCH_MS);
    try {
      const copy = (await reader.get(id)).record!; // in L1 at t0, for 1,000 ms
      now = t0 + 700;
      expect(reader.peek(id)).toBe(copy);
      batchSent();
      expect(askedL2, "L2 asked again with 300 ms of the copy's life left").not.toHaveBeenCalled();

      // In its last quarter, a read is answered from memory at once and L2 is asked again behind it.
      now = t0 + 800;
      let done = nextRefresh();
      expect(reader.peek(id)).toBe(copy);
      expect(reader.peek(id)).toBe(copy); // one refresh per copy, however many reads
      batchSent();
      expect(askedL2.mock.calls).toEqual([[[{ orderId: id, heldVersion: 1 }]]]);
      await done;
      expect(refreshes).toEqual(['kept']);
      now = t0 + 1_700; // past the first TTL: the same object (its body and ETag too), renewed at t0 + 800
      done = nextRefresh();
      expect(reader.peek(id)).toBe(copy);
      batchSent();
      await done;

      // A change this reader never hears of (no invalidation reaches it) is found by the next refresh.
      expect((await cancel(web.runtime, id)).statusCode).toBe(200);
      now = t0 + 2_500;
      done = nextRefresh();
      expect(reader.peek(id)?.order.version, 'within the TTL of the last check').toBe(1);
      batchSent();
      await done;
      expect(refreshes).toEqual(['kept', 'kept', 'replaced']);
      expect(reader.peek(id)?.order).toMatchObject({ version: 2, status: 'CANCELLED' });

      // A refresh still waiting for its batch when the news of a newer version comes is dropped.
      now = t0 + 3_300; // the version 2 copy came at t0 + 2,500
      expect(reader.peek(id)?.order.version).toBe(2);
      reader.invalidate(id, 3);
      askedL2.mockClear();
      batchSent();
      expect(askedL2).not.toHaveBeenCalled();

      // A copy nobody reads in its last quarter is not refreshed: it lapses at its TTL.
      await reader.get(other); // at t0 + 3,300
      now = t0 + 4_400;
      expect(reader.peek(other)).toBeUndefined();
      expect(refreshes).toHaveLength(3);
    } finally {
      vi.useRealTimers();
      vi.restoreAllMocks();
      await reader.close();
    }
  });

  it("another process's memory drops its copy when the invalidation arrives, long before its TTL", async () => {
    other = await createWebRuntime({ ...web.config, l1TtlMs: 60_000 }, pino({ level: 'silent' }));
    await other.subscribed;
    const id = await web.postOrder();
    expect((await get(other, id, web.apiKey)).json().version).toBe(1); // now in the other's L1 for a minute
    expect((await other.reader.get(id)).source).toBe('l1');
    const heard = vi.spyOn(other.reader, 'invalidate'); // still does its work: only watched
    const changedAt = performance.now();
    expect((await cancel(web.runtime, id)).statusCode).toBe(200);
    // The invalidation arrives within a bound far below the TTL ...
    await vi.waitFor(() => expect(heard).toHaveBeenCalledWith(id, 2), { timeout: 5000, interval: 1 });
    const lagMs = performance.now() - changedAt;
    // ... and the very next read no longer comes from the old copy in memory.
    expect(await other.reader.get(id)).toMatchObject({ source: 'l2', record: { order: { id, version: 2, status: 'CANCELLED' } } });
    console.log(`L1 stale window in another process after a write: ${lagMs.toFixed(1)} ms (its TTL: 60,000 ms)`);
  });
});

describe('replicas', () => {
  let replica: TestDatabase;
  let viaReplica: TestWeb;
  let noReadYourWrites: TestWeb;

  beforeAll(async () => {
    // A "replica" that lags behind for good: an empty database of the same schema.
    replica = await createTestDatabase();
    viaReplica = await createTestWeb({ mysqlReplicaUrl: replica.mysqlUrl });
    noReadYourWrites = await createTestWeb({ mysqlReplicaUrl: replica.mysqlUrl, readYourWritesMs: 0 });
  });

  afterAll(async () => {
    await viaReplica?.close();
    await noReadYourWrites?.close();
    await replica?.drop();
  });

  it("a client reads its own write from the primary, not the lagging replica", async () => {
    const id = await viaReplica.postOrder();
    const res = await get(viaReplica.runtime, id, viaReplica.apiKey);
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(id);
  });

  it('otherwise reads go to the replica', async () => {
    const id = await noReadYourWrites.postOrder();
    const res = await get(noReadYourWrites.runtime, id, noReadYourWrites.apiKey);
    expect(res.statusCode).toBe(404); // the replica has not seen it
  });
});
