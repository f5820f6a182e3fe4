import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { Fleet } from './support/fleet.ts';
import { expectDispatchedOnce, expectNotifiedOnce, postOrders, providerView, seedZones, waitAllDispatched, type Zone } from './support/fleet-orders.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix } from './support/test-redis.ts';

/**
 * MySQL away from the whole fleet, not only the intake: the worker (pricing, dispatch, and the
 * scheduler's maintenance jobs it runs), the notifier and the scheduler reach MySQL through one
 * proxy, which goes silent in the middle of a run and then cuts every connection, as a MySQL that
 * hangs and is restarted. The web keeps its own way to MySQL and goes on answering 202 meanwhile.
 * Every order answered 202 must reach DISPATCHED once, every notification go out once, and the
 * same processes must carry on, none restarted.
 */
let database: TestDatabase;
let fleet: Fleet;
let zones: Zone[];
let apiKey: string;
let mysqlProxy: TcpProxy;

const DB_TIMEOUT_MS = 1000;
/** The web has its own way to MySQL; on a busy machine it may still answer 503, which a client retries with the same key. */
const retried: (string | undefined)[] = [];
const posting = { retries: 5, onRetried: (code: string | undefined) => void retried.push(code) };

beforeAll(async () => {
  database = await createTestDatabase();
  const mysql = new URL(database.mysqlUrl);
  mysqlProxy = await TcpProxy.start(mysql.hostname, Number(mysql.port || 3306));
  const proxied = new URL(database.mysqlUrl);
  proxied.host = `127.0.0.1:${mysqlProxy.port}`;
  zones = await seedZones(database.db, { zones: 4, riders: 10, capacity: 10 });
  apiKey = (await createApiClient(database.db, new IdGenerator(1), 'mysql-away test')).key;
  const behindProxy = { MYSQL_URL: proxied.toString(), DB_TIMEOUT_MS: String(DB_TIMEOUT_MS) };
  fleet = await Fleet.start({
    mysqlUrl: database.mysqlUrl,
    redisUrl: TEST_REDIS_URL,
    per: { worker: behindProxy, notifier: behindProxy, scheduler: behindProxy },
  });
}, 90_000);

afterAll(async () => {
  mysqlProxy?.thaw();
  await fleet?.stop();
  await mysqlProxy?.close();
  await database?.drop();
  if (fleet) await Promise.all([deleteKeysWithPrefix(fleet.queuePrefix), deleteKeysWithPrefix(fleet.cachePrefix)]);
});

/** Lines of the processes' output since `marks` matching the pattern. */
function linesSince(marks: Map<string, number>, pattern: RegExp): string[] {
  return fleet.started.flatMap(({ child }) => child.output().slice(marks.get(String(child.process.pid)) ?? 0).split('\n')).filter((line) => pattern.test(line));
}

async function ordersByStatus(): Promise<Record<string, number>> {
  const rows = (await database.db('orders').groupBy('status').select('status').count({ n: '*' })) as unknown as { status: string; n: number }[];
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** The web's order inserts waiting for a row lock now (a silent process's open transaction would hold it). */
async function intakeLockWaits(): Promise<number> {
  const [rows] = (await database.db.raw(
    'SELECT r.trx_query AS query FROM information_schema.innodb_lock_waits w JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id ' +
      'JOIN information_schema.processlist p ON p.id = r.trx_mysql_thread_id WHERE p.db = ?',
    [database.name],
  )) as [{ query: string | null }[]];
  return rows.filter((row) => /INSERT INTO orders|INSERT INTO order_events/i.test(row.query ?? '')).length;
}

function outputMarks(): Map<string, number> {
  return new Map(fleet.started.map(({ child }) => [String(child.process.pid), child.output().length]));
}

describe('MySQL away from the worker, the notifier and the scheduler', () => {
  it('silent, then every connection reset, mid-run: every order answered 202 is dispatched once and notified once, with no process restarted', async () => {
    const started = performance.now();
    // Wave A: MySQL goes silent once the fleet has dispatched and notified some of it, the rest still
    // to be priced, dispatched or notified.
    const postingA = postOrders(fleet.api, apiKey, zones, 150, posting);
    postingA.catch(() => undefined); // awaited below; a test that fails first must not leave it unhandled
    await vi.waitFor(async () => expect((await providerView(fleet.provider)).stats.deliveries).toBeGreaterThan(0), { timeout: 20_000, interval: 20 });
    mysqlProxy.freeze();
    const frozenAt = performance.now();
    const marks = outputMarks();
    // The fleet is stuck mid-statement (what it sent waits in the proxy); the web goes on taking
    // orders (wave B) meanwhile.
    await vi.waitFor(() => expect(mysqlProxy.heldFromApp()).not.toBe(''), { timeout: 10_000, interval: 20 });
    const postingB = postOrders(fleet.api, apiKey, zones, 60, posting);
    postingB.catch(() => undefined);
    // MySQL stays silent a while: a statement on it waits (there is no bound on one), a new connection
    // or one the pool cannot give out fails at DB_TIMEOUT_MS. This wait is the fault being injected,
    // not synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 3 * DB_TIMEOUT_MS));
    const [stuck, blockedIntake] = await Promise.all([ordersByStatus(), intakeLockWaits()]);
    const atReset = `orders ${JSON.stringify(stuck)}, intake inserts waiting on a lock: ${blockedIntake}`;
    expect((stuck.CREATED ?? 0) + (stuck.PRICED ?? 0), `orders waiting on MySQL (${atReset})`).toBeGreaterThan(0);
    expect(stuck.DISPATCHED ?? 0, `orders dispatched before the silence (${atReset})`).toBeGreaterThan(0);
    const cut = mysqlProxy.connections;
    expect(cut, 'connections open through the silent proxy').toBeGreaterThan(0);
    mysqlProxy.reset();
    mysqlProxy.thaw();
    const silentS = ((performance.now() - frozenAt) / 1000).toFixed(1);
    const [waveA, waveB] = await Promise.all([postingA, postingB]);
    // The statements cut short fail their jobs, which are retried (on the same processes).
    await vi.waitFor(() => expect(linesSince(marks, /job attempt failed/).length).toBeGreaterThan(0), { timeout: 10_000, interval: 50 });

    // Wave C, with every connection cut once more while it flows.
    const waveC = await postOrders(fleet.api, apiKey, zones, 60, { ...posting, onAnswered: (answered) => answered === 30 && mysqlProxy.reset() });
    const all = [...waveA, ...waveB, ...waveC];
    await waitAllDispatched(database.db, all, 60_000);
    await expectDispatchedOnce(database.db, all);
    const { repeatsCounted, stats } = await expectNotifiedOnce(database.db, fleet.provider, all, 60_000);
    expect(stats.deliveries, 'messages delivered').toBe(all.length * 2);
    // A repeat reaches the provider only as a call the ledger counted (attempts): the two agree.
    expect(stats.duplicates, 'repeats the provider dropped by key').toBeLessThanOrEqual(repeatsCounted);
    expect(fleet.stillRunning(), 'processes running, none restarted').toEqual(['provider', 'web', 'worker', 'notifier', 'scheduler']);
    console.log(
      `MySQL silent for ${silentS} s (${atReset}), then ${cut} connections reset ` +
        `(and again during the last ${waveC.length}): all ${all.length} orders dispatched once and notified once in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `${linesSince(marks, /job attempt failed/).length} job attempts failed and were retried; provider: ${stats.deliveries} delivered, ${stats.duplicates} repeats dropped by key; ` +
        `${retried.length} answers 503 retried with the same key (${[...new Set(retried)].join(', ') || 'none'})`,
    );
  }, 150_000);
});
