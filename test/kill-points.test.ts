import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { Fleet } from './support/fleet.ts';
import { expectDispatchedOnce, expectNotifiedOnce, postOrders, providerView, seedZones, waitAllDispatched, type Zone } from './support/fleet-orders.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix } from './support/test-redis.ts';

/**
 * SIGKILL where it hurts most, on the fleet's real processes. Each kill is timed without a hook in
 * the code: a proxy in front of the dependency the process needs for its next step is frozen, so
 * the process is stuck exactly there; the test sees that from outside (rows committed, the
 * provider's record, the bytes waiting in the proxy), then kills it.
 */
let database: TestDatabase;
let fleet: Fleet;
let zones: Zone[];
let apiKey: string;
/** Between the web and Redis. */
let webRedis: TcpProxy;
/** Between the notifier and MySQL. */
let notifierMysql: TcpProxy;

const redisPort = Number(new URL(TEST_REDIS_URL).port || 6379);

function through(url: string, proxy: TcpProxy): string {
  const routed = new URL(url);
  routed.host = `127.0.0.1:${proxy.port}`;
  return routed.toString();
}

beforeAll(async () => {
  database = await createTestDatabase();
  const mysql = new URL(database.mysqlUrl);
  [webRedis, notifierMysql] = await Promise.all([TcpProxy.start('127.0.0.1', redisPort), TcpProxy.start(mysql.hostname, Number(mysql.port || 3306))]);
  zones = await seedZones(database.db, { zones: 2, riders: 10, capacity: 10 });
  apiKey = (await createApiClient(database.db, new IdGenerator(1), 'kill-points test')).key;
  fleet = await Fleet.start({
    mysqlUrl: database.mysqlUrl,
    redisUrl: TEST_REDIS_URL,
    // Orders count as lost 4 s after their commit: the web is killed well before the reconciler
    // would look at its orders, so what puts them back is known.
    env: { RECONCILE_CREATED_AFTER_MS: '4000' },
    per: {
      // The enqueue waits as long as Redis is silent (up to a minute) instead of giving up at once:
      // the web is killed while it waits, between its commit and its enqueue.
      web: { REDIS_URL: through(TEST_REDIS_URL, webRedis), REDIS_TIMEOUT_MS: '60000' },
      // One batch at a time, a provider call allowed to be slow, and its job taken over 1 s after
      // its notifier dies (every notifier of the queue shares JOB_LOCK_MS).
      notifier: { MYSQL_URL: through(database.mysqlUrl, notifierMysql), NOTIFIER_CONCURRENCY: '1', NOTIFY_TIMEOUT_MS: '10000', JOB_LOCK_MS: '1000' },
    },
  });
}, 90_000);

afterAll(async () => {
  webRedis?.thaw();
  notifierMysql?.thaw();
  await fleet?.stop();
  await Promise.all([webRedis?.close(), notifierMysql?.close()]);
  await database?.drop();
  if (fleet) await Promise.all([deleteKeysWithPrefix(fleet.queuePrefix), deleteKeysWithPrefix(fleet.cachePrefix)]);
});

/** The CREATED orders the reconciler put back on the queue, by the worker's own report. */
function reconciledCreated(output: string): number {
  return output
    .split('\n')
    .filter((line) => line.includes('"msg":"reconcile:'))
    .reduce((sum, line) => sum + (JSON.parse(line) as { created: { enqueued: number } }).created.enqueued, 0);
}

describe('SIGKILL at the worst moment', () => {
  it('the web killed between its commit and its enqueue: every order it answered 202 is put back by the reconciler and dispatched once', async () => {
    const web = fleet.process('web');
    // One order through the whole pipeline first: the web's connections to Redis are up and its
    // queues ready, so what the freeze holds is the enqueue itself.
    await waitAllDispatched(database.db, await postOrders(fleet.api, apiKey, zones, 1), 30_000);
    webRedis.freeze();
    const ids = await postOrders(fleet.api, apiKey, zones, 40);

    // Committed: every row is there, CREATED, naming the price batch its enqueue was to add.
    const rows = (await database.db('orders').whereIn('id', ids).select('id', 'status', 'price_job_id')) as { id: string; status: string; price_job_id: string }[];
    expect(rows.map((row) => row.status)).toEqual(ids.map(() => 'CREATED'));
    const namedBatch = new Map(rows.map((row) => [String(row.id), row.price_job_id]));
    const batches = [...new Set(namedBatch.values())];
    // Enqueuing: each batch's add is on the wire, waiting in the silent proxy.
    await vi.waitFor(() => expect(batches.filter((jobId) => !webRedis.heldFromApp().includes(jobId))).toEqual([]), { timeout: 10_000, interval: 20 });
    expect(web.output()).not.toMatch(/not enqueued/);

    web.process.kill('SIGKILL');
    expect((await web.exited).signal).toBe('SIGKILL');
    // What the dead process had sent is lost with its connections (thawed alone, the proxy could
    // still deliver it before it notices the process is gone).
    webRedis.reset();
    webRedis.thaw();
    const workerLog = fleet.process('worker').output().length;
    const queue = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: fleet.queuePrefix });
    try {
      expect(await Promise.all(batches.map((jobId) => queue.getJob(jobId))), 'price batches in Redis after the kill').toEqual(batches.map(() => undefined));
    } finally {
      await queue.close();
    }
    // A supervisor starts a web again; it knows nothing of the orders its predecessor accepted.
    await fleet.startRole('web');

    await waitAllDispatched(database.db, ids, 30_000);
    await expectDispatchedOnce(database.db, ids);
    // Priced by the very batches their rows named when the web died, put back under those ids by the reconciler.
    const pricedBy = (await database.db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICED' }).select('order_id', 'job_id')) as {
      order_id: string;
      job_id: string;
    }[];
    expect(pricedBy.filter((event) => event.job_id !== namedBatch.get(String(event.order_id)))).toEqual([]);
    expect(reconciledCreated(fleet.process('worker').output().slice(workerLog))).toBe(ids.length);
    await expectNotifiedOnce(database.db, fleet.provider, ids, 30_000);
  }, 90_000);

  it("the notifier killed between the provider's answer and the SENT mark: its batch is retried, the provider drops the repeats by key, nobody is notified twice", async () => {
    const notifier = fleet.process('notifier');
    const before = await providerView(fleet.provider);
    const delivered = new Set(before.messages.map((message) => message.id));
    // A slow provider: each call stays open long enough to freeze the notifier's MySQL behind it.
    await fetch(`${fleet.provider}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ delayMs: 2500 }) });
    const ids = await postOrders(fleet.api, apiKey, zones, 20);

    // A batch call reached the provider: freeze MySQL, so the notifier cannot mark anything SENT.
    await vi.waitFor(async () => expect((await providerView(fleet.provider)).stats.requests).toBeGreaterThan(before.stats.requests), { timeout: 30_000, interval: 20 });
    notifierMysql.freeze();
    // The provider answered (it delivered the messages) and the notifier moved on to the SENT mark, which waits in the proxy.
    await vi.waitFor(async () => expect((await providerView(fleet.provider)).stats.deliveries).toBeGreaterThan(before.stats.deliveries), { timeout: 10_000, interval: 20 });
    await vi.waitFor(() => expect(notifierMysql.heldFromApp()).not.toBe(''), { timeout: 10_000, interval: 20 });
    const inFlight = (await providerView(fleet.provider)).messages.filter((message) => !delivered.has(message.id));
    const ledger = await database.db('notifications').whereIn('order_id', inFlight.map((message) => message.orderId)).select('order_id', 'kind', 'status', 'attempts');
    const rowOf = (message: { orderId: string; kind: string }) => ledger.find((row) => String(row.order_id) === message.orderId && row.kind === message.kind);
    expect(inFlight.map((message) => [rowOf(message)?.status, rowOf(message)?.attempts]), 'delivered, yet PENDING in the ledger').toEqual(inFlight.map(() => ['PENDING', 1]));

    notifier.process.kill('SIGKILL');
    expect((await notifier.exited).signal).toBe('SIGKILL');
    notifierMysql.reset();
    notifierMysql.thaw();
    await fetch(`${fleet.provider}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ delayMs: 0 }) });
    await fleet.startRole('notifier');

    await waitAllDispatched(database.db, ids, 30_000);
    const { repeatsCounted, stats } = await expectNotifiedOnce(database.db, fleet.provider, ids, 30_000);
    // The killed batch was sent again, each message once more, and the provider dropped every repeat by its key.
    expect(stats.duplicates - before.stats.duplicates, 'repeats the provider dropped').toBe(inFlight.length);
    expect(repeatsCounted, 'calls beyond the first, by the ledger').toBe(inFlight.length);
    expect(stats.deliveries - before.stats.deliveries, 'messages delivered').toBe(ids.length * 2);
    console.log(`notifier killed with ${inFlight.length} messages delivered and not yet marked SENT: its replacement sent them again, the provider dropped each repeat by its key`);
  }, 90_000);
});
