/**
 * Reads bench: `npm run bench:reads`.
 *
 * One run, on a database of its own (courier_bench_reads: dropped, created and migrated each run)
 * holding BENCH_ORDERS (100,000) active orders (CREATED, PRICED, DISPATCHED, PICKED_UP, a few
 * *_FAILED) and a quarter as many finished ones (DELIVERED, CANCELLED), interleaved: 125,000 rows,
 * 80% active, of one API client and one merchant, inserted in multi-row batches; and an order cache
 * prefix of its own (CACHE_PREFIX=courier-bench-reads; its keys are deleted with SCAN + DEL before
 * and after, never FLUSHALL):
 *
 *   1. warm-up: Courier's own warm-up, warmUpCacheJob of jobs/warm-up-cache.ts, called as the
 *      maintenance worker calls it: a keyset scan of the active orders by primary key
 *      (BENCH_WARMUP_PAGE, 5,000 a page), each page one OrderCache.fillMany (one pipelined round
 *      trip of compare-and-set scripts under the cache epoch read before the page), then the
 *      merchants and riders. Target: 100,000 orders in at most 5 s.
 *   2. the cold-key stampede: BENCH_STAMPEDE (1,000) concurrent reads of one order that is in
 *      neither L1 nor L2 (its L2 entry is deleted first). Once in-process, with an OrderReader on a
 *      knex pool whose 'query' events are counted (as test/order-reads.test.ts does), and the same
 *      with the cache off for contrast; once over HTTP against the ORDER_CACHE=on web process: 1,000
 *      keep-alive connections are opened first, then the 1,000 GETs are sent at once, and the web's
 *      own counter courier_order_reads_total{source="mysql"} (one per readOrder query) is read
 *      before and after. MariaDB's global Com_select over the same moment is shown as a coarse
 *      cross-check (it counts every session on the server). Target: exactly one query.
 *   3. the read load: the servers below, each its own process, under the same load: autocannon,
 *      BENCH_CONNECTIONS (64) connections, pipelining 1, BENCH_DURATION_S (10) s each after a
 *      BENCH_WARMUP_S (2) s warm-up, `GET /v1/orders/<id>` with the client's Authorization header,
 *      the id drawn at random (seeded: every server gets the same sequence) from a hot set of
 *      BENCH_HOT_ORDERS (1,000) orders picked at random from the table. The machine is shared and
 *      other work comes and goes, so the servers take turns: all four run at once (idle when not
 *      loaded) and each one's 10 s is cut into BENCH_ROUNDS (4) slices of 2.5 s, loaded one server
 *      after the other, the order rotating each round; the figures add the slices up, and the
 *      ratios are given per round too.
 *
 *        cached       workers/web.ts, ORDER_CACHE=on (L2 warm from step 1; L1 fills in the warm-up)
 *        uncached     workers/web.ts, ORDER_CACHE=off (every GET is one SELECT on the primary)
 *        hello        bench/hello-get-server.ts: Fastify answering {"hello":"world"} (the ceiling)
 *        hello-order  the same server answering one hot order's JSON verbatim with Courier's
 *                     headers: the bytes of a cached read without its work (information only)
 *
 *      The web processes run as production does (`node workers/web.ts`, plus the
 *      benches' preload that stops them if the bench dies) with Courier's defaults otherwise
 *      (L1_TTL_MS 1000, L1_MAX 10000, DB_POOL_MAX 10), LOG_LEVEL=warn, WARMUP_ON_START=false.
 *      Before the load, one pass of GETs over the hot set checks every answer (200, the right id,
 *      status and version). The web's /metrics is read before and after the load for the split of
 *      reads between L1, L2 and MySQL. CPU during each slice is read from /proc: the server, this
 *      process (the load generator), mariadbd, redis-server, and the whole machine (it is shared).
 *      Targets: cached >= 3x uncached req/s and >= 70% of hello.
 *
 * req/s is responses / load window (first request to last response, summed over the slices; each
 * slice stops cleanly: every connection finishes the request it has out). Latencies are
 * autocannon's per-response times, percentiles over every response of every slice.
 *
 * Prints each phase, a table, the ratios and PASS/FAIL per target; writes
 * bench/results/reads-latest.json. Exit code: 0 whatever PASS/FAIL says; 1 if a correctness check
 * fails (an order cached wrong, a wrong answer) or the bench cannot run. Every process it starts is
 * stopped at the end, on error and on a signal; a watchdog bounds the whole run.
 *
 * Env: BENCH_DURATION_S (10), BENCH_ROUNDS (4), BENCH_CONNECTIONS (64), BENCH_WARMUP_S (2),
 * BENCH_ORDERS (100000), BENCH_HOT_ORDERS (1000), BENCH_STAMPEDE (1000), BENCH_WARMUP_PAGE (5000),
 * BENCH_SERVERS (cached,uncached,hello,hello-order), BENCH_READS_MYSQL_URL
 * (mysql://root@127.0.0.1:3306/courier_bench_reads), BENCH_REDIS_URL (redis://127.0.0.1:6379),
 * BENCH_CPU_PROF_DIR (a V8 CPU profile of each server process there).
 */
import { deepStrictEqual } from 'node:assert';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import autocannon, { type Client, type RequestParams, type Result } from 'autocannon';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { warmUpCacheJob } from '../jobs/warm-up-cache.ts';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { OrderReader, type ReadSource } from '../shared/cache/order-reader.ts';
import { createApiClient } from '../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { createDb, databaseName, type Db } from '../shared/db.ts';
import { IdGenerator, shardOf } from '../shared/ids.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { createMetrics } from '../shared/metrics.ts';
import { invalidationChannel } from '../shared/orders/order-writer.ts';
import { readOrder } from '../shared/orders/read-order.ts';
import type { OrderStatus } from '../shared/orders/status.ts';
import { openBenchDatabase } from './lib/bench-database.ts';
import { exitNow, freePort, httpOk, runBench, startBenchProcess, stopBenchProcess, type BenchProcess } from './lib/child-processes.ts';
import { intEnv, REDIS_URL, serversFromEnv } from './lib/env.ts';
import { stopCleanlyAfter } from './lib/clean-stop.ts';
import { fmt, log, printTable, progress } from './lib/log.ts';
import { prng } from './lib/prng.ts';
import { summaryHead, writeResultsFile } from './lib/results-file.ts';
import { childPids, pidsNamed, readMachineCpuMs, readProcCpuMs, sumCpuMs } from './proc-stats.ts';

// ---------------------------------------------------------------------------------------------
// Settings

type ServerName = 'cached' | 'uncached' | 'hello' | 'hello-order';
const ALL_SERVERS: readonly ServerName[] = ['cached', 'uncached', 'hello', 'hello-order'];

const DURATION_S = intEnv('BENCH_DURATION_S', 10, 1, 600);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 64, 1, 1024);
const WARMUP_S = intEnv('BENCH_WARMUP_S', 2, 0, 60);
/** Each server's BENCH_DURATION_S is cut into this many slices, the servers taking turns (see below). */
const ROUNDS = intEnv('BENCH_ROUNDS', 4, 1, 20);
const SLICE_S = DURATION_S / ROUNDS;
const ORDER_COUNT = intEnv('BENCH_ORDERS', 100_000, 1_000, 1_000_000);
const HOT_ORDERS = intEnv('BENCH_HOT_ORDERS', 1_000, 1, Math.max(1, ORDER_COUNT - 10));
const STAMPEDE = intEnv('BENCH_STAMPEDE', 1_000, 2, 5_000);
const WARMUP_PAGE = intEnv('BENCH_WARMUP_PAGE', 5_000, 100, 50_000);
const SERVERS = serversFromEnv(ALL_SERVERS);

/** Its own variable: the intake bench's BENCH_MYSQL_URL must never make this bench drop that database. */
const MYSQL_URL = process.env.BENCH_READS_MYSQL_URL || 'mysql://root@127.0.0.1:3306/courier_bench_reads';
if (!/^courier_bench_reads/.test(databaseName(MYSQL_URL))) {
  throw new Error(`BENCH_READS_MYSQL_URL must name a database starting with courier_bench_reads (it is dropped), got "${databaseName(MYSQL_URL)}"`);
}
const CACHE_PREFIX = 'courier-bench-reads';
const QUEUE_PREFIX = '{courier-bench-reads}';
const MERCHANT = { id: '9001', name: 'Reads Bench Noodles', zone_id: 'bench-reads', lat: 31.2397, lng: 121.4998, address: '1 Bench Rd' };
const LOAD_SEED = 0x5eed;

/** Bounds: nothing here waits for ever. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const LOAD_DRAIN_BOUND_S = 15;
const HTTP_TIMEOUT_MS = 15_000;

const TARGET = { minCachedOverUncached: 3, minCachedOverHello: 0.7, maxWarmupS: 5, stampedeQueries: 1 } as const;

const round = (_key: string, value: unknown) => (typeof value === 'number' && !Number.isInteger(value) ? Math.round(value * 100) / 100 : value);


// ---------------------------------------------------------------------------------------------
// The data: one client, one merchant, ORDER_COUNT active orders and a quarter as many finished ones

/** [status, share of its group in %, version]. Active: what the warm-up loads; finished: what it skips. */
const ACTIVE_MIX: readonly (readonly [OrderStatus, number, number])[] = [
  ['CREATED', 12, 1],
  ['PRICED', 18, 2],
  ['DISPATCHED', 43, 3],
  ['PICKED_UP', 25, 4],
  ['PRICING_FAILED', 1, 2],
  ['DISPATCH_FAILED', 1, 3],
];
const FINISHED_MIX: readonly (readonly [OrderStatus, number, number])[] = [
  ['DELIVERED', 75, 5],
  ['CANCELLED', 25, 2],
];
const FINISHED_COUNT = Math.round(ORDER_COUNT / 4);

interface Seeded {
  readonly db: Db;
  readonly config: Config;
  readonly apiKey: string;
  readonly clientId: string;
  /** The active orders' ids, ascending (the warm-up loads these). */
  readonly activeIds: readonly string[];
  readonly finishedIds: readonly string[];
  /** What each order is: for the answers check. */
  readonly expected: ReadonlyMap<string, { status: OrderStatus; version: number }>;
  readonly statusCounts: Record<string, number>;
  readonly rows: number;
  readonly insertS: number;
}

/** Exactly `count` statuses shared as the mix says (the last takes the remainder). */
function statusesOf(mix: readonly (readonly [OrderStatus, number, number])[], count: number): (readonly [OrderStatus, number])[] {
  const out: (readonly [OrderStatus, number])[] = [];
  let left = count;
  mix.forEach(([status, share, version], i) => {
    const n = i === mix.length - 1 ? left : Math.round((count * share) / 100);
    for (let k = 0; k < n; k++) out.push([status, version]);
    left -= n;
  });
  return out;
}

async function seedDatabase(): Promise<Seeded> {
  const config = loadConfig({ MYSQL_URL, REDIS_URL, CACHE_PREFIX, DB_TIMEOUT_MS: '10000' });
  const { db, name, migrations } = await openBenchDatabase(config, { fresh: true });
  log(`bench: database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const ids = new IdGenerator(63);
  await db('merchants').insert(MERCHANT);
  const client = await createApiClient(db, ids, `reads bench ${new Date().toISOString()}`);

  // Active and finished orders interleaved at random through the table (ids are time-ordered).
  const random = prng(42);
  const statuses = [...statusesOf(ACTIVE_MIX, ORDER_COUNT), ...statusesOf(FINISHED_MIX, FINISHED_COUNT)];
  for (let i = statuses.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [statuses[i], statuses[j]] = [statuses[j]!, statuses[i]!];
  }
  const shard = shardOf(MERCHANT.id, 64);
  const expected = new Map<string, { status: OrderStatus; version: number }>();
  const activeIds: string[] = [];
  const finishedIds: string[] = [];
  const statusCounts: Record<string, number> = {};
  const rows: Record<string, unknown>[] = [];
  const itemsPool = [
    { sku: 'NDL-1', name: 'Beef noodles', qty: 2, priceCents: 3800 },
    { sku: 'TEA-2', name: 'Jasmine tea', qty: 1, priceCents: 1200 },
    { sku: 'DMP-3', name: 'Pork dumplings', qty: 12, priceCents: 2600 },
  ];
  statuses.forEach(([status, version], i) => {
    const priced = status !== 'CREATED' && status !== 'PRICING_FAILED';
    const dispatched = ['DISPATCHED', 'PICKED_UP', 'DELIVERED'].includes(status);
    const id = ids.next(shard);
    expected.set(id, { status, version });
    (FINISHED_MIX.some(([s]) => s === status) ? finishedIds : activeIds).push(id);
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    rows.push({
      id,
      client_id: client.id,
      idempotency_key: `reads-bench-${i}`,
      request_hash: i.toString(16).padStart(64, '0'),
      merchant_id: MERCHANT.id,
      zone_id: MERCHANT.zone_id,
      status,
      version,
      attempts: status === 'CREATED' ? 0 : 1,
      last_error: status.endsWith('_FAILED') ? 'bench: no free rider within reach' : null,
      pickup_lat: MERCHANT.lat,
      pickup_lng: MERCHANT.lng,
      dropoff_lat: (31.2 + random() * 0.08).toFixed(6),
      dropoff_lng: (121.44 + random() * 0.08).toFixed(6),
      dropoff_address: `${1 + (i % 999)} Century Avenue, Pudong, Shanghai`,
      dropoff_phone: `+86 138 ${String(i).padStart(8, '0')}`,
      items: JSON.stringify(itemsPool.slice(0, 1 + (i % 3))),
      note: i % 4 === 0 ? 'ring twice' : null,
      fee_cents: priced ? 500 + Math.floor(random() * 1500) : null,
      eta_seconds: priced ? 600 + Math.floor(random() * 1800) : null,
      rider_id: dispatched ? String(3000 + (i % 30)) : null,
    });
  });
  // Multi-row INSERTs of 2,000 rows (48,000 placeholders, under MySQL's 65,535), two at a time.
  const t0 = performance.now();
  const BATCH = 2_000;
  let next = 0;
  let done = 0;
  const writer = async () => {
    while (next < rows.length) {
      const batch = rows.slice(next, next + BATCH);
      next += BATCH;
      await db('orders').insert(batch);
      done += batch.length;
      progress(`  inserting orders: ${fmt(done)} / ${fmt(rows.length)}`, false);
    }
  };
  await Promise.all([writer(), writer()]);
  const insertS = (performance.now() - t0) / 1000;
  log(
    `bench: inserted ${fmt(rows.length)} orders in ${fmt(insertS, 2)} s, one client, merchant ${MERCHANT.id}: ${fmt(ORDER_COUNT)} active ` +
      `(${ACTIVE_MIX.map(([s]) => `${s} ${fmt(statusCounts[s] ?? 0)}`).join(', ')}) and ${fmt(FINISHED_COUNT)} finished ` +
      `(${FINISHED_MIX.map(([s]) => `${s} ${fmt(statusCounts[s] ?? 0)}`).join(', ')}), interleaved`,
  );
  return { db, config, apiKey: client.key, clientId: client.id, activeIds, finishedIds, expected, statusCounts, rows: rows.length, insertS };
}

// ---------------------------------------------------------------------------------------------
// Redis: the bench's cache prefix only

async function deleteCacheKeys(redis: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

async function deleteBenchKeys(redis: Redis): Promise<number> {
  return (await deleteCacheKeys(redis, `${CACHE_PREFIX}:*`)) + (await deleteCacheKeys(redis, `${QUEUE_PREFIX}:*`));
}

// ---------------------------------------------------------------------------------------------
// Phase 1: the warm-up (jobs/warm-up-cache.ts, as the maintenance worker runs it)

interface WarmupFigures {
  readonly via: string;
  /** Active orders loaded, and of those written (the others were cached already). */
  readonly orders: number;
  readonly written: number;
  readonly merchants: number;
  readonly riders: number;
  readonly pageSize: number;
  /** Wall time of the call, and the job's own figure. */
  readonly seconds: number;
  readonly jobMs: number;
  readonly ordersPerS: number;
  /** CPU used during it, in ms: this process (the job: SELECT results, toOrderView, JSON, the pipelines), Redis, MariaDB. */
  readonly cpuMs: { bench: number; redis: number | null; mariadb: number | null };
  readonly l2BytesPerOrder: number | null;
  readonly sampleChecked: number;
  readonly sampleMismatches: number;
  /** Finished orders sampled, and how many of them were cached (the warm-up skips them: 0 expected). */
  readonly finishedChecked: number;
  readonly finishedCached: number;
}

async function warmUp(
  ctx: { db: Db; config: Config; cache: OrderCache; redis: Redis; redisPid: number | null },
  activeIds: readonly string[],
  finishedIds: readonly string[],
): Promise<WarmupFigures> {
  const { db, config, cache, redis, redisPid } = ctx;
  log(
    `\n== 1. warm-up: warmUpCacheJob (jobs/warm-up-cache.ts) over ${fmt(activeIds.length + finishedIds.length)} orders, ` +
      `${fmt(WARMUP_PAGE)} a page: loads the ${fmt(activeIds.length)} active ones (and the merchant)`,
  );
  // Its own connections, as the maintenance worker gives it (workers/maintenance-pipeline.ts).
  const jobDb = createDb({ ...config, dbPoolMax: Math.min(config.dbPoolMax, 4) });
  const jobRedis = createProducerRedis(config);
  let outcome: Awaited<ReturnType<typeof warmUpCacheJob>>;
  const cpu0 = { bench: process.cpuUsage(), redis: redisPid === null ? null : readProcCpuMs(redisPid), mariadb: sumCpuMs(pidsNamed(['mariadbd', 'mysqld'])) };
  const t0 = performance.now();
  let seconds: number;
  try {
    await jobDb.raw('SELECT 1');
    await jobRedis.ping();
    outcome = await warmUpCacheJob(
      { reason: 'cli' },
      { db: jobDb, redis: jobRedis, config, logger: pino({ level: 'silent' }), metrics: createMetrics(), pageSize: WARMUP_PAGE },
    );
    seconds = (performance.now() - t0) / 1000;
  } finally {
    jobRedis.disconnect();
    await jobDb.destroy();
  }
  const benchCpu = process.cpuUsage(cpu0.bench);
  const redisNow = redisPid === null ? null : readProcCpuMs(redisPid);
  const mariadbNow = sumCpuMs(pidsNamed(['mariadbd', 'mysqld']));
  const cpuMs = {
    bench: (benchCpu.user + benchCpu.system) / 1000,
    redis: redisNow === null || cpu0.redis === null ? null : redisNow - cpu0.redis,
    mariadb: mariadbNow === null || cpu0.mariadb === null ? null : mariadbNow - cpu0.mariadb,
  };
  const orders = outcome.orders;
  log(
    `  ${fmt(orders)} orders in ${fmt(seconds, 2)} s (the job's own figure: ${fmt(outcome.ms)} ms): ${fmt(orders / seconds)} orders/s; ` +
      `${fmt(outcome.ordersWritten)} written; ${fmt(outcome.merchants)} merchant(s), ${fmt(outcome.riders)} riders`,
  );
  const perOrder = (ms: number | null) => (ms === null ? 'n/a' : `${fmt(ms / 1000, 2)} s (${fmt((ms * 1000) / Math.max(1, orders))} µs/order)`);
  log(`  CPU during it: this process (the job) ${perOrder(cpuMs.bench)}, redis-server ${perOrder(cpuMs.redis)}, mariadbd ${perOrder(cpuMs.mariadb)}`);

  // What an order costs in Redis (MEMORY USAGE of a sample).
  const random = prng(7);
  const sample = Array.from({ length: 200 }, () => activeIds[Math.floor(random() * activeIds.length)]!);
  let bytes = 0;
  let measured = 0;
  for (const id of sample) {
    const usage = (await redis.call('MEMORY', 'USAGE', cache.key(id))) as number | null;
    if (typeof usage === 'number') {
      bytes += usage;
      measured += 1;
    }
  }
  const l2BytesPerOrder = measured ? bytes / measured : null;
  // Checks: the cached orders are what readOrder answers; finished ones were left out.
  let mismatches = 0;
  const checked = sample.slice(0, 50);
  for (const id of checked) {
    const [cached, fresh] = await Promise.all([cache.get(id), readOrder(db, id)]);
    try {
      if (cached.kind !== 'hit') throw new Error(`not cached (${cached.kind})`);
      deepStrictEqual(cached.record, JSON.parse(JSON.stringify(fresh)));
    } catch (error) {
      mismatches += 1;
      if (mismatches <= 3) log(`  MISMATCH for order ${id}: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`);
    }
  }
  const finishedChecked = Math.min(50, finishedIds.length);
  let finishedCached = 0;
  for (const id of finishedIds.slice(0, finishedChecked)) if ((await cache.get(id)).kind !== 'miss') finishedCached += 1;
  log(
    `  L2 size: about ${fmt(l2BytesPerOrder)} bytes per order (MEMORY USAGE of ${measured} keys), ~${fmt(((l2BytesPerOrder ?? 0) * orders) / 1e6, 1)} MB for all; ` +
      `${checked.length} sampled active orders ${mismatches ? `checked: ${mismatches} MISMATCHED readOrder` : 'equal readOrder'}; ` +
      `${finishedCached} of ${finishedChecked} sampled finished orders cached (0 expected)`,
  );
  const verdict = seconds <= TARGET.maxWarmupS && orders === ORDER_COUNT ? 'PASS' : 'FAIL';
  log(`  ${verdict}: warm-up of ${fmt(orders)} orders in ${fmt(seconds, 2)} s (target: ${fmt(ORDER_COUNT)} in at most ${TARGET.maxWarmupS} s)`);
  return {
    via: 'warmUpCacheJob of jobs/warm-up-cache.ts, called as workers/maintenance-pipeline.ts does (its own pool of min(DB_POOL_MAX, 4) and a producer Redis connection)',
    orders,
    written: outcome.ordersWritten,
    merchants: outcome.merchants,
    riders: outcome.riders,
    pageSize: WARMUP_PAGE,
    seconds,
    jobMs: outcome.ms,
    ordersPerS: orders / seconds,
    cpuMs,
    l2BytesPerOrder,
    sampleChecked: checked.length,
    sampleMismatches: mismatches,
    finishedChecked,
    finishedCached,
  };
}

// ---------------------------------------------------------------------------------------------
// Phase 2a: the stampede in-process

interface InProcessStampede {
  readonly orderId: string;
  readonly cache: 'on' | 'off';
  readonly readers: number;
  readonly orderQueries: number;
  readonly allAnswered: boolean;
  readonly ms: number;
}

async function stampedeInProcess(ctx: { config: Config; cache: OrderCache }, orderId: string, enabled: boolean): Promise<InProcessStampede> {
  // A pool of its own, so the queries counted are this reader's only.
  const db = createDb(ctx.config);
  let orderQueries = 0;
  const count = (query: { sql: string }) => {
    if (/from `orders`/i.test(query.sql)) orderQueries += 1;
  };
  db.on('query', count);
  const reader = new OrderReader({
    cache: ctx.cache,
    primary: db,
    subscriber: new Redis(REDIS_URL, { lazyConnect: true }),
    invalidationChannel: invalidationChannel(ctx.config),
    l1TtlMs: ctx.config.l1TtlMs,
    l1Max: ctx.config.l1Max,
    logger: pino({ level: 'silent' }),
    enabled,
  });
  try {
    await db.raw('SELECT 1'); // the pool's first connection is not part of the stampede
    await ctx.cache.forget(orderId);
    const t0 = performance.now();
    const reads = await Promise.all(Array.from({ length: STAMPEDE }, () => reader.get(orderId)));
    const ms = performance.now() - t0;
    return { orderId, cache: enabled ? 'on' : 'off', readers: STAMPEDE, orderQueries, allAnswered: reads.every((r) => r.record?.order.id === orderId), ms };
  } finally {
    db.off('query', count);
    await reader.close();
    await db.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 2b: the stampede over HTTP

interface HttpStampede {
  readonly orderId: string;
  readonly requests: number;
  readonly connectionsOpen: number;
  readonly status200: number;
  readonly rightOrder: number;
  readonly ms: number;
  /** courier_order_reads_total deltas over the stampede. */
  readonly reads: Record<ReadSource, number>;
  /** Requests that shared the one load in flight (single-flight: counted by no source). */
  readonly joinedInFlight: number;
  readonly mysqlQueries: number;
  /** MariaDB's global Com_select delta: every session on the server, a coarse upper bound. */
  readonly comSelectDelta: number;
}

function httpGet(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${HTTP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function comSelect(db: Db): Promise<number> {
  const [rows] = (await db.raw("SHOW GLOBAL STATUS LIKE 'Com_select'")) as [{ Value: string }[]];
  return Number(rows[0]?.Value ?? 0);
}

async function stampedeOverHttp(
  url: string,
  ctx: { db: Db; cache: OrderCache; apiKey: string },
  orderId: string,
  authWarmOrderId: string,
): Promise<HttpStampede> {
  const agent = new Agent({ keepAlive: true, maxSockets: STAMPEDE, maxFreeSockets: STAMPEDE, keepAliveMsecs: 10_000 });
  const auth = { authorization: `Bearer ${ctx.apiKey}` };
  try {
    // The API key is cached by then (another order's GET), and every connection is open and idle.
    const warm = await httpGet(agent, `${url}/v1/orders/${authWarmOrderId}`, auth);
    if (warm.status !== 200) throw new Error(`GET of order ${authWarmOrderId} answered ${warm.status}: ${warm.body}`);
    await Promise.all(Array.from({ length: STAMPEDE }, () => httpGet(agent, `${url}/healthz`)));
    const connectionsOpen = Object.values(agent.freeSockets).reduce((sum, sockets) => sum + (sockets?.length ?? 0), 0);
    await ctx.cache.forget(orderId);
    const before = await scrapeReads(url);
    const comBefore = await comSelect(ctx.db);
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: STAMPEDE }, () => httpGet(agent, `${url}/v1/orders/${orderId}`, auth)));
    const ms = performance.now() - t0;
    const comAfter = await comSelect(ctx.db);
    const after = await scrapeReads(url);
    const reads = readsBetween(before, after);
    if (!reads) throw new Error('could not read courier_order_reads_total from the web process');
    const status200 = answers.filter((a) => a.status === 200).length;
    const rightOrder = answers.filter((a) => a.status === 200 && (JSON.parse(a.body) as { id?: string }).id === orderId).length;
    return {
      orderId,
      requests: STAMPEDE,
      connectionsOpen,
      status200,
      rightOrder,
      ms,
      reads,
      joinedInFlight: STAMPEDE - reads.l1 - reads.l2 - reads.mysql,
      mysqlQueries: reads.mysql,
      comSelectDelta: comAfter - comBefore,
    };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The web's read counters

type Reads = Record<ReadSource, number>;

async function scrapeReads(baseUrl: string): Promise<Reads | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return null;
    const text = await response.text();
    const reads: Reads = { l1: 0, l2: 0, mysql: 0 };
    for (const match of text.matchAll(/^courier_order_reads_total\{([^}]*)\} ([0-9.e+-]+)$/gm)) {
      const source = /source="([^"]+)"/.exec(match[1] ?? '')?.[1];
      if (source === 'l1' || source === 'l2' || source === 'mysql') reads[source] = Number(match[2]);
    }
    return reads;
  } catch {
    return null;
  }
}

function readsBetween(before: Reads | null, after: Reads | null): Reads | null {
  if (!before || !after) return null;
  return { l1: after.l1 - before.l1, l2: after.l2 - before.l2, mysql: after.mysql - before.mysql };
}

// ---------------------------------------------------------------------------------------------
// The read load: GET /v1/orders/<id>, ids drawn from the hot set

interface GetLoadRun {
  readonly result: Result;
  /** First request sent to last response received, in seconds. */
  readonly windowS: number;
  readonly sent: number;
  readonly responses: number;
  readonly status200: number;
  readonly unanswered: number;
  readonly drained: boolean;
}

/**
 * autocannon at full speed for `seconds`, then a clean stop: every connection finishes the request
 * it has out. Each response's latency (ms, as autocannon measures it) goes into `latencies` when given.
 */
function runGetLoad(opts: {
  url: string;
  apiKey: string;
  hot: readonly string[];
  seconds: number;
  seed: number;
  latencies?: number[];
  progressLabel?: string;
}): Promise<GetLoadRun> {
  const clients: Client[] = [];
  const random = prng(opts.seed);
  const nextPath = () => `/v1/orders/${opts.hot[Math.floor(random() * opts.hot.length)]!}`;
  let responses = 0;
  let status200 = 0;
  let lastResponseAt = 0;
  return new Promise<GetLoadRun>((resolveRun, rejectRun) => {
    const startedAt = performance.now();
    const instance = autocannon(
      {
        url: opts.url,
        connections: CONNECTIONS,
        pipelining: 1,
        // A backstop only: the timer below stops the load; this cuts off whatever is still out.
        duration: opts.seconds + LOAD_DRAIN_BOUND_S,
        timeout: 10,
        requests: [
          {
            method: 'GET',
            path: nextPath(),
            headers: { authorization: `Bearer ${opts.apiKey}` },
            setupRequest: (request: RequestParams) => {
              request.path = nextPath();
              return request;
            },
          },
        ],
        setupClient: (client: Client) => {
          clients.push(client);
        },
      },
      (error, result) => {
        cleanStop.dispose();
        if (error) return rejectRun(error);
        const sent = clients.reduce((sum, client) => sum + client.reqsMade, 0);
        const unanswered = sent - responses;
        resolveRun({ result, windowS: (lastResponseAt - startedAt) / 1000, sent, responses, status200, unanswered, drained: cleanStop.stopping && unanswered === 0 });
      },
    );
    instance.on('response', (_client: Client, statusCode: number, _bytes: number, responseTimeMs: number) => {
      responses += 1;
      if (statusCode === 200) status200 += 1;
      opts.latencies?.push(responseTimeMs);
      lastResponseAt = performance.now();
    });
    const cleanStop = stopCleanlyAfter({
      clients,
      seconds: opts.seconds,
      startedAt,
      responses: () => responses,
      ...(opts.progressLabel === undefined ? {} : { progressLabel: opts.progressLabel }),
    });
  });
}

/** The q-quantile of ascending values (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------
// Where the CPU goes (Linux /proc, read only: bench/proc-stats.ts)

/** machine: all cores, every process (the machine is shared: what the others leave is someone else's). */
type CpuGroup = 'server' | 'loadGenerator' | 'mariadb' | 'redis' | 'machine';
const CPU_GROUPS: readonly CpuGroup[] = ['server', 'loadGenerator', 'mariadb', 'redis', 'machine'];

/** The pid of the Redis the bench uses (INFO server), when it runs on this machine; null otherwise. */
async function redisServerPid(redis: Redis): Promise<number | null> {
  const match = /^process_id:(\d+)/m.exec(await redis.info('server'));
  const pid = match?.[1] === undefined ? null : Number(match[1]);
  return pid !== null && readProcCpuMs(pid) !== null ? pid : null;
}

let REDIS_PID: number | null = null;

function cpuSnapshot(serverPid: number): Record<CpuGroup, number | null> {
  const own = process.cpuUsage();
  return {
    server: sumCpuMs([serverPid, ...childPids(serverPid)]),
    loadGenerator: (own.user + own.system) / 1000,
    mariadb: sumCpuMs(pidsNamed(['mariadbd', 'mysqld'])),
    redis: REDIS_PID === null ? null : readProcCpuMs(REDIS_PID),
    machine: readMachineCpuMs()?.busyMs ?? null,
  };
}

/** How busy the whole machine is over the next `ms`, in % of one core (all cores: up to 100 x cores). */
async function machineBusyPercent(ms: number): Promise<number | null> {
  const before = readMachineCpuMs();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = readMachineCpuMs();
  return before && after ? ((after.busyMs - before.busyMs) / ms) * 100 : null;
}

function cpuDeltaMs(before: Record<CpuGroup, number | null>, after: Record<CpuGroup, number | null>): Record<CpuGroup, number | null> {
  const out = {} as Record<CpuGroup, number | null>;
  for (const group of CPU_GROUPS) {
    const a = before[group];
    const b = after[group];
    out[group] = a === null || b === null ? null : b - a;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Phase 3: the servers, loaded in turn

const SERVER_FILES: Record<ServerName, string> = {
  cached: 'workers/web.ts',
  uncached: 'workers/web.ts',
  hello: 'bench/hello-get-server.ts',
  'hello-order': 'bench/hello-get-server.ts',
};
const isWeb = (name: ServerName) => name === 'cached' || name === 'uncached';

/** What hello-order answers: one hot order's JSON as Courier serialises it (set in main). */
let HELLO_ORDER_BODY = '';

interface RunningServer extends BenchProcess {
  readonly url: string;
}

function serverEnv(name: ServerName, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...(name === 'hello'
      ? {}
      : name === 'hello-order'
        ? { HELLO_BODY: HELLO_ORDER_BODY }
        : {
          MYSQL_URL,
          REDIS_URL,
          QUEUE_PREFIX,
          CACHE_PREFIX,
          ORDER_CACHE: name === 'cached' ? 'on' : 'off',
          WARMUP_ON_START: 'false',
          DASHBOARD_PASSWORD: 'reads-bench', // only silences the open-dashboard warning
          NODE_ID: String(ALL_SERVERS.indexOf(name) + 1),
        }),
  };
}

async function startServer(name: ServerName): Promise<RunningServer & { env: NodeJS.ProcessEnv }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = serverEnv(name, port);
  return startBenchProcess(
    {
      name,
      label: `${name} server`,
      file: SERVER_FILES[name],
      env,
      readyLine: isWeb(name) ? /web listening/ : /listening on http:/,
      probe: isWeb(name) ? () => httpOk(`${url}/readyz`) : undefined,
      timeoutMs: START_TIMEOUT_MS,
      suppressedNote: 'more server output suppressed',
    },
    { url, env },
  );
}

interface Slice {
  readonly round: number;
  readonly seconds: number;
  readonly responses: number;
  readonly windowS: number;
  readonly reqPerSec: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly drained: boolean;
}

/** One server's figures, summed over its slices of the rounds. */
interface ServerFigures {
  readonly name: ServerName;
  readonly file: string;
  readonly orderCache: 'on' | 'off' | null;
  readonly l1TtlMs: number | null;
  readonly l1Max: number | null;
  readonly dbPoolMax: number | null;
  /** All responses / the sum of the slices' windows. */
  readonly reqPerSec: number;
  readonly slices: Slice[];
  /** Over every response of every slice, from autocannon's per-response time (sub-ms). */
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; average: number };
  readonly responses: number;
  readonly status200: number;
  readonly non2xx: number;
  readonly statusCodes: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly windowS: number;
  readonly unanswered: number;
  readonly drained: boolean;
  readonly checkPass: { requests: number; ok: number; wrong: string[] };
  readonly warmupResponses: number | null;
  /** courier_order_reads_total deltas over the slices (web servers only). */
  readonly reads: Reads | null;
  /** CPU during the slices, in % of one core, over the time between each slice's two snapshots. */
  readonly cpuPercent: Record<CpuGroup, number | null>;
  readonly serverCpuUsPerResponse: number | null;
  readonly loadGeneratorCpuUsPerResponse: number | null;
  /** Bytes received per response, headers and body (autocannon's throughput). */
  readonly bytesPerResponse: number;
  readonly stampede: HttpStampede | null;
  readonly exit: { code: number | null; signal: string | null; forced: boolean } | null;
}

/** A server under test, with what its slices have added up so far. */
interface ServerUnderTest {
  readonly name: ServerName;
  readonly proc: RunningServer & { env: NodeJS.ProcessEnv };
  readonly config: Config | null;
  readonly checkPass: { requests: number; ok: number; wrong: string[] };
  warmupResponses: number | null;
  stampede: HttpStampede | null;
  readonly slices: Slice[];
  readonly latencies: number[];
  readonly statusCodes: Record<string, number>;
  readonly cpuMs: Record<CpuGroup, number | null>;
  cpuWallS: number;
  reads: Reads | null;
  responses: number;
  status200: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  bytes: number;
  windowS: number;
  unanswered: number;
  drained: boolean;
  exit: { code: number | null; signal: string | null; forced: boolean } | null;
}

/** One GET of every hot order (16 at a time): each answers 200 and, from Courier, with its id, status and version. */
async function checkPass(url: string, apiKey: string, hot: readonly string[], expected: Seeded['expected'], hello: boolean) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const wrong: string[] = [];
  let ok = 0;
  try {
    let next = 0;
    const worker = async () => {
      while (next < hot.length) {
        const id = hot[next++]!;
        const { status, body } = await httpGet(agent, `${url}/v1/orders/${id}`, { authorization: `Bearer ${apiKey}` });
        const want = expected.get(id)!;
        let good = status === 200;
        if (good && !hello) {
          const order = JSON.parse(body) as { id?: string; status?: string; version?: number };
          good = order.id === id && order.status === want.status && order.version === want.version;
        }
        if (good) ok += 1;
        else if (wrong.length < 5) wrong.push(`${id}: ${status} ${body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    agent.destroy();
  }
  return { requests: hot.length, ok, wrong };
}

async function startUnderTest(name: ServerName, ctx: { apiKey: string; hot: readonly string[]; expected: Seeded['expected'] }): Promise<ServerUnderTest> {
  const web = isWeb(name);
  progress(`  [${name}] starting ${SERVER_FILES[name]}${web ? ` (ORDER_CACHE=${name === 'cached' ? 'on' : 'off'})` : ''}`, true);
  const proc = await startServer(name);
  const under: ServerUnderTest = {
    name,
    proc,
    config: web ? loadConfig(proc.env) : null,
    checkPass: { requests: 0, ok: 0, wrong: [] },
    warmupResponses: null,
    stampede: null,
    slices: [],
    latencies: [],
    statusCodes: {},
    cpuMs: { server: 0, loadGenerator: 0, mariadb: 0, redis: 0, machine: 0 },
    cpuWallS: 0,
    reads: web ? { l1: 0, l2: 0, mysql: 0 } : null,
    responses: 0,
    status200: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    bytes: 0,
    windowS: 0,
    unanswered: 0,
    drained: true,
    exit: null,
  };
  try {
    const check = await checkPass(proc.url, ctx.apiKey, ctx.hot, ctx.expected, !web);
    Object.assign(under.checkPass, check);
    log(
      `  [${name}] listening on ${proc.url} (pid ${proc.pid}); check pass: ${fmt(check.ok)} of ${fmt(check.requests)} hot orders answered right` +
        (check.wrong.length ? `; WRONG: ${check.wrong.join(' | ')}` : ''),
    );
  } catch (error) {
    await stopBenchProcess(proc, STOP_TIMEOUT_MS);
    throw error;
  }
  return under;
}

/** One slice of the load on one server: the load, its CPU and its read counters, added to the server's sums. */
async function runSlice(under: ServerUnderTest, ctx: { apiKey: string; hot: readonly string[] }, round: number): Promise<Slice> {
  const { name, proc } = under;
  const web = isWeb(name);
  const readsBefore = web ? await scrapeReads(proc.url) : null;
  const cpuBefore = cpuSnapshot(proc.pid);
  const cpuFrom = performance.now();
  const run = await runGetLoad({
    url: proc.url,
    apiKey: ctx.apiKey,
    hot: ctx.hot,
    seconds: SLICE_S,
    // The same id sequence for every server in a round.
    seed: LOAD_SEED + round,
    latencies: under.latencies,
    ...(SLICE_S >= 5 ? { progressLabel: `round ${round + 1}/${ROUNDS} ${name}` } : {}),
  });
  const cpuDelta = cpuDeltaMs(cpuBefore, cpuSnapshot(proc.pid));
  // autocannon reports up to a second after the last response: that tail is in both the CPU and
  // the time it is divided by.
  under.cpuWallS += (performance.now() - cpuFrom) / 1000;
  for (const group of CPU_GROUPS) {
    const sum = under.cpuMs[group];
    const delta = cpuDelta[group];
    under.cpuMs[group] = sum === null || delta === null ? null : sum + delta;
  }
  if (web) {
    const reads = readsBetween(readsBefore, await scrapeReads(proc.url));
    under.reads = reads && under.reads ? { l1: under.reads.l1 + reads.l1, l2: under.reads.l2 + reads.l2, mysql: under.reads.mysql + reads.mysql } : null;
  }
  const r = run.result;
  under.responses += run.responses;
  under.status200 += run.status200;
  under.non2xx += r.non2xx;
  under.errors += r.errors;
  under.timeouts += r.timeouts;
  under.bytes += r.throughput.total;
  under.windowS += run.windowS;
  under.unanswered += run.unanswered;
  under.drained &&= run.drained;
  for (const [code, stats] of Object.entries(r.statusCodeStats)) under.statusCodes[code] = (under.statusCodes[code] ?? 0) + stats.count;
  const slice: Slice = {
    round: round + 1,
    seconds: SLICE_S,
    responses: run.responses,
    windowS: run.windowS,
    reqPerSec: run.responses / run.windowS,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    drained: run.drained,
  };
  under.slices.push(slice);
  log(
    `  round ${round + 1}/${ROUNDS} ${name.padEnd(11)} ${fmt(run.responses).padStart(8)} responses in ${fmt(run.windowS, 2)} s: ${fmt(slice.reqPerSec).padStart(6)} req/s` +
      (r.non2xx || r.errors || r.timeouts ? `, non-2xx ${fmt(r.non2xx)}, errors ${fmt(r.errors + r.timeouts)}` : '') +
      (run.drained ? '' : `; NOT drained: ${fmt(run.unanswered)} requests got no response`),
  );
  return slice;
}

function figuresOf(under: ServerUnderTest): ServerFigures {
  const sorted = Float64Array.from(under.latencies).sort();
  const values = Array.from(sorted);
  const average = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const cpu = {} as Record<CpuGroup, number | null>;
  for (const group of CPU_GROUPS) {
    const ms = under.cpuMs[group];
    cpu[group] = ms === null || under.cpuWallS <= 0 ? null : ms / 10 / under.cpuWallS;
  }
  const perResponse = (ms: number | null) => (ms === null ? null : (ms * 1000) / Math.max(1, under.responses));
  return {
    name: under.name,
    file: SERVER_FILES[under.name],
    orderCache: under.config?.orderCache ?? null,
    l1TtlMs: under.config?.l1TtlMs ?? null,
    l1Max: under.config?.l1Max ?? null,
    dbPoolMax: under.config?.dbPoolMax ?? null,
    reqPerSec: under.responses / under.windowS,
    slices: under.slices,
    latencyMs: { p50: quantile(values, 0.5), p90: quantile(values, 0.9), p99: quantile(values, 0.99), max: values[values.length - 1] ?? Number.NaN, average },
    responses: under.responses,
    status200: under.status200,
    non2xx: under.non2xx,
    statusCodes: under.statusCodes,
    errors: under.errors,
    timeouts: under.timeouts,
    windowS: under.windowS,
    unanswered: under.unanswered,
    drained: under.drained,
    checkPass: under.checkPass,
    warmupResponses: under.warmupResponses,
    reads: under.reads,
    cpuPercent: cpu,
    serverCpuUsPerResponse: perResponse(under.cpuMs.server),
    loadGeneratorCpuUsPerResponse: perResponse(under.cpuMs.loadGenerator),
    bytesPerResponse: under.bytes / Math.max(1, under.responses),
    stampede: under.stampede,
    exit: under.exit,
  };
}

function logServerFigures(f: ServerFigures): void {
  const pct = (v: number | null) => (v === null ? 'n/a' : `${fmt(v)}%`);
  log(
    `  [${f.name}] ${fmt(f.responses)} responses in ${fmt(f.windowS, 2)} s: ${fmt(f.reqPerSec)} req/s (rounds: ${f.slices.map((s) => fmt(s.reqPerSec)).join(', ')}), ` +
      `p50 ${fmt(f.latencyMs.p50, 2)} ms, p99 ${fmt(f.latencyMs.p99, 2)} ms, non-2xx ${fmt(f.non2xx)}, errors ${fmt(f.errors + f.timeouts)}`,
  );
  log(
    `  [${f.name}] CPU during its slices (% of one core): server ${pct(f.cpuPercent.server)}, load generator ${pct(f.cpuPercent.loadGenerator)}, ` +
      `mariadbd ${pct(f.cpuPercent.mariadb)}, redis ${pct(f.cpuPercent.redis)}; the whole machine ${pct(f.cpuPercent.machine)} of ${cpus().length * 100}%; ` +
      `per response: server ${fmt(f.serverCpuUsPerResponse)} µs, load generator ${fmt(f.loadGeneratorCpuUsPerResponse)} µs`,
  );
  if (f.reads) {
    const total = f.reads.l1 + f.reads.l2 + f.reads.mysql;
    const share = (n: number) => `${fmt(n)} (${fmt((100 * n) / Math.max(1, total), 1)}%)`;
    log(`  [${f.name}] reads answered from (courier_order_reads_total): L1 ${share(f.reads.l1)}, L2 ${share(f.reads.l2)}, MySQL ${share(f.reads.mysql)}`);
  }
}

function logInProcessStampede(s: InProcessStampede): void {
  log(
    `  in-process, cache ${s.cache}: ${fmt(s.readers)} concurrent reader.get(${s.orderId}) -> ${fmt(s.orderQueries)} ` +
      `quer${s.orderQueries === 1 ? 'y' : 'ies'} on orders, in ${fmt(s.ms, 1)} ms; ${s.allAnswered ? 'every read got the order' : 'SOME READS DID NOT GET THE ORDER'}`,
  );
}

function logHttpStampede(s: HttpStampede): void {
  log(
    `  [cached] HTTP stampede: ${fmt(s.requests)} concurrent GETs of order ${s.orderId} on ${fmt(s.connectionsOpen)} open connections, ` +
      `all answered in ${fmt(s.ms)} ms, ${fmt(s.rightOrder)} x 200 with the order`,
  );
  log(
    `  [cached] courier_order_reads_total over it: mysql +${fmt(s.reads.mysql)}, l2 +${fmt(s.reads.l2)}, l1 +${fmt(s.reads.l1)}; ` +
      `${fmt(s.joinedInFlight)} requests joined the load in flight (single-flight), ${fmt(s.reads.l1)} arrived after it and found L1; ` +
      `MariaDB Com_select +${fmt(s.comSelectDelta)} (whole server, coarse)`,
  );
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const perServerS = WARMUP_S + DURATION_S + (ROUNDS + 1) * LOAD_DRAIN_BOUND_S + (START_TIMEOUT_MS + STOP_TIMEOUT_MS) / 1000 + 60;
  const boundS = 600 + SERVERS.length * perServerS;
  const watchdog = setTimeout(() => {
    log(`bench: did not finish within its bound (${Math.round(boundS)} s): giving up`);
    void exitNow(1);
  }, boundS * 1000);
  watchdog.unref();

  log(
    `bench: reads, ${SERVERS.join(', ')}; ${fmt(ORDER_COUNT)} active orders (+ ${fmt(FINISHED_COUNT)} finished), hot set ${fmt(HOT_ORDERS)}; ${DURATION_S} s each in ${ROUNDS} turn${ROUNDS === 1 ? '' : 's'} (after a ${WARMUP_S} s warm-up), ` +
      `${CONNECTIONS} connections, pipelining 1; node ${process.version}, ${cpus().length} CPUs (shared by the load generator, the server, MariaDB and Redis)`,
  );
  const loadAverageAtStart = loadavg();
  const busyBefore = await machineBusyPercent(1000);
  log(
    `bench: before the run: load average ${loadAverageAtStart.map((v) => fmt(v, 2)).join(', ')}, the machine ${busyBefore === null ? 'n/a' : `${fmt(busyBefore)}%`} busy ` +
      `of ${cpus().length * 100}% over a second (it is shared; see "the whole machine" below)`,
  );
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  let seeded: Seeded | undefined;
  try {
    const stale = await deleteBenchKeys(redis);
    if (stale) log(`bench: deleted ${fmt(stale)} keys left under ${CACHE_PREFIX}: / ${QUEUE_PREFIX}: by an earlier run`);
    seeded = await seedDatabase();
    const { db, config, apiKey, activeIds, finishedIds, expected } = seeded;
    const cache = new OrderCache(redis, { prefix: CACHE_PREFIX, ttlMs: config.cacheTtlMs });

    // The hot set (active orders: those a warm-up loads and clients track), and three active
    // orders outside it for the stampedes (never read before those).
    const random = prng(1234);
    const shuffled = [...activeIds];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const hot = shuffled.slice(0, HOT_ORDERS);
    const [inProcessId, httpId, authWarmId] = shuffled.slice(HOT_ORDERS, HOT_ORDERS + 3) as [string, string, string];

    // 1. warm-up
    REDIS_PID = await redisServerPid(redis);
    const warmup = await warmUp({ db, config, cache, redis, redisPid: REDIS_PID }, activeIds, finishedIds);
    HELLO_ORDER_BODY = JSON.stringify((await readOrder(db, hot[0]!))!.order);

    // 2. stampede, in-process (the HTTP one runs against the cached server below)
    log(`\n== 2. the cold-key stampede: ${fmt(STAMPEDE)} concurrent reads of one order in neither L1 nor L2`);
    const inProcess = await stampedeInProcess({ config, cache }, inProcessId, true);
    logInProcessStampede(inProcess);
    const inProcessOff = await stampedeInProcess({ config, cache }, inProcessId, false);
    logInProcessStampede(inProcessOff);
    if (!SERVERS.includes('cached')) log('  (the HTTP stampede runs against the cached server, which BENCH_SERVERS leaves out)');

    // 3. the servers: all started, checked and warmed up; then ROUNDS rounds in which each takes
    // its turn for SLICE_S seconds, the order rotating each round, so that a burst of someone
    // else's work on this shared machine falls on all of them alike rather than on one.
    log(
      `\n== 3. the read load: ${SERVERS.join(', ')}; GET /v1/orders/<one of ${fmt(hot.length)} hot ids>, ${CONNECTIONS} connections; ` +
        `${ROUNDS} round${ROUNDS === 1 ? '' : 's'} of ${fmt(SLICE_S, 2)} s per server (${DURATION_S} s each in all), after a ${WARMUP_S} s warm-up each`,
    );
    const servers: ServerUnderTest[] = [];
    try {
      for (const name of SERVERS) servers.push(await startUnderTest(name, { apiKey, hot, expected }));
      if (WARMUP_S > 0) {
        for (const under of servers) {
          progress(`  [${under.name}] warm-up load: ${WARMUP_S} s`, true);
          const run = await runGetLoad({ url: under.proc.url, apiKey, hot, seconds: WARMUP_S, seed: LOAD_SEED - 1 });
          under.warmupResponses = run.responses;
        }
      }
      const cachedServer = servers.find((under) => under.name === 'cached');
      if (cachedServer) {
        progress(`  [cached] the cold-key stampede over HTTP: ${fmt(STAMPEDE)} concurrent GETs of order ${httpId}`, true);
        cachedServer.stampede = await stampedeOverHttp(cachedServer.proc.url, { db, cache, apiKey }, httpId, authWarmId);
        logHttpStampede(cachedServer.stampede);
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < servers.length; k++) await runSlice(servers[(round + k) % servers.length]!, { apiKey, hot }, round);
      }
      for (const under of servers) {
        progress(`  [${under.name}] stopping the server (SIGTERM)`, false);
        const exit = await stopBenchProcess(under.proc, STOP_TIMEOUT_MS);
        under.exit = { code: exit.code, signal: exit.signal, forced: exit.forced };
        if (exit.code !== 0) log(`  [${under.name}] exited with code ${exit.code}, signal ${exit.signal}`);
      }
    } finally {
      for (const under of servers) if (!under.exit) await stopBenchProcess(under.proc, STOP_TIMEOUT_MS);
    }
    const figures = servers.map(figuresOf);
    log('');
    for (const f of figures) logServerFigures(f);

    // Results
    const by = (name: ServerName) => figures.find((f) => f.name === name);
    const cached = by('cached');
    const uncached = by('uncached');
    const hello = by('hello');
    const helloOrder = by('hello-order');
    const cachedOverUncached = cached && uncached ? cached.reqPerSec / uncached.reqPerSec : null;
    const cachedOverHello = cached && hello ? cached.reqPerSec / hello.reqPerSec : null;
    const cachedOverHelloOrder = cached && helloOrder ? cached.reqPerSec / helloOrder.reqPerSec : null;
    const httpStampede = cached?.stampede ?? null;
    const perRound = (over: ServerFigures | undefined) =>
      cached && over ? cached.slices.map((slice, i) => slice.reqPerSec / (over.slices[i]?.reqPerSec ?? Number.NaN)) : null;
    const roundRatios = { cachedOverUncached: perRound(uncached), cachedOverHello: perRound(hello), cachedOverHelloOrder: perRound(helloOrder) };

    log('\n== results');
    printTable(
      ['server', 'req/s', 'p50 ms', 'p99 ms', 'responses', '200', 'non-2xx', 'errors', 'bytes/resp', 'server CPU', 'server µs/resp', 'load gen µs/resp', 'L1 / L2 / MySQL'],
      figures.map((f) => [
        f.name,
        fmt(f.reqPerSec),
        fmt(f.latencyMs.p50, 1),
        fmt(f.latencyMs.p99, 1),
        fmt(f.responses),
        fmt(f.status200),
        fmt(f.non2xx),
        fmt(f.errors + f.timeouts),
        fmt(f.bytesPerResponse),
        f.cpuPercent.server === null ? 'n/a' : `${fmt(f.cpuPercent.server)}%`,
        fmt(f.serverCpuUsPerResponse),
        fmt(f.loadGeneratorCpuUsPerResponse),
        f.reads ? `${fmt(f.reads.l1)} / ${fmt(f.reads.l2)} / ${fmt(f.reads.mysql)}` : 'n/a',
      ]),
      '',
    );
    log('');
    // CPU per response is far less at the mercy of what else runs on the machine than req/s is.
    const cpuPerResponse = (f: ServerFigures | undefined) =>
      f && f.serverCpuUsPerResponse !== null && f.loadGeneratorCpuUsPerResponse !== null ? f.serverCpuUsPerResponse + f.loadGeneratorCpuUsPerResponse : null;
    const cpuCost = Object.fromEntries(figures.map((f) => [f.name, cpuPerResponse(f)]));
    const cachedCost = cpuPerResponse(cached);
    const helloCost = cpuPerResponse(hello);
    const uncachedCost = cpuPerResponse(uncached);
    const cpuModelRatios = {
      cachedOverHello: cachedCost && helloCost ? helloCost / cachedCost : null,
      cachedOverUncached: cachedCost && uncachedCost ? uncachedCost / cachedCost : null,
    };
    log(
      `CPU per response, server + load generator: ${figures.map((f) => `${f.name} ${fmt(cpuCost[f.name])} µs`).join(', ')}` +
        (cpuModelRatios.cachedOverHello !== null || cpuModelRatios.cachedOverUncached !== null
          ? `; where CPU is the limit that makes cached ${cpuModelRatios.cachedOverUncached === null ? '' : `${fmt(cpuModelRatios.cachedOverUncached, 2)}x uncached`}` +
            `${cpuModelRatios.cachedOverUncached !== null && cpuModelRatios.cachedOverHello !== null ? ' and ' : ''}` +
            `${cpuModelRatios.cachedOverHello === null ? '' : `${fmt(cpuModelRatios.cachedOverHello * 100)}% of hello`} (information; MariaDB's and Redis's CPU left out)`
          : ''),
    );
    if (ROUNDS > 1) {
      const list = (ratios: number[] | null, asPercent: boolean) =>
        ratios ? ratios.map((r) => (asPercent ? `${fmt(r * 100)}%` : `${fmt(r, 2)}x`)).join(', ') : 'n/a';
      log(
        `per round: cached / uncached ${list(roundRatios.cachedOverUncached, false)}; cached / hello ${list(roundRatios.cachedOverHello, true)}` +
          (roundRatios.cachedOverHelloOrder ? `; cached / hello-order ${list(roundRatios.cachedOverHelloOrder, true)}` : ''),
      );
    }
    const verdicts: { target: string; measured: string; verdict: 'PASS' | 'FAIL' | 'n/a' }[] = [];
    const add = (target: string, measured: string, pass: boolean | null) => {
      const verdict = pass === null ? 'n/a' : pass ? 'PASS' : 'FAIL';
      verdicts.push({ target, measured, verdict });
      log(`${verdict}: ${target}: ${measured}`);
    };
    add(
      `cached >= ${TARGET.minCachedOverUncached}x uncached req/s`,
      cachedOverUncached === null ? 'n/a' : `${fmt(cachedOverUncached, 2)}x (${fmt(cached!.reqPerSec)} / ${fmt(uncached!.reqPerSec)})`,
      cachedOverUncached === null ? null : cachedOverUncached >= TARGET.minCachedOverUncached,
    );
    add(
      `cached >= ${TARGET.minCachedOverHello * 100}% of hello-world req/s`,
      cachedOverHello === null ? 'n/a' : `${fmt(cachedOverHello * 100)}% (${fmt(cached!.reqPerSec)} / ${fmt(hello!.reqPerSec)})`,
      cachedOverHello === null ? null : cachedOverHello >= TARGET.minCachedOverHello,
    );
    if (cachedOverHelloOrder !== null) {
      log(
        `(information) cached / hello-order (the same bytes as a cached read, constant): ${fmt(cachedOverHelloOrder * 100)}% ` +
          `(${fmt(cached!.reqPerSec)} / ${fmt(helloOrder!.reqPerSec)})`,
      );
    }
    add(
      `warm-up of ${fmt(ORDER_COUNT)} orders in <= ${TARGET.maxWarmupS} s`,
      `${fmt(warmup.orders)} in ${fmt(warmup.seconds, 2)} s (${fmt(warmup.ordersPerS)} orders/s)`,
      warmup.orders === ORDER_COUNT && warmup.seconds <= TARGET.maxWarmupS,
    );
    add(
      `cold-key stampede (${fmt(STAMPEDE)} readers) = ${TARGET.stampedeQueries} query, in-process`,
      `${fmt(inProcess.orderQueries)} (cache off: ${fmt(inProcessOff.orderQueries)})`,
      inProcess.orderQueries === TARGET.stampedeQueries && inProcess.allAnswered,
    );
    add(
      `cold-key stampede (${fmt(STAMPEDE)} GETs) = ${TARGET.stampedeQueries} query, over HTTP`,
      httpStampede ? `${fmt(httpStampede.mysqlQueries)} (courier_order_reads_total{source="mysql"}), ${fmt(httpStampede.rightOrder)} of ${fmt(httpStampede.requests)} answered 200 with the order` : 'n/a',
      httpStampede ? httpStampede.mysqlQueries === TARGET.stampedeQueries && httpStampede.rightOrder === httpStampede.requests : null,
    );

    const wrongAnswers = figures.some((f) => f.checkPass.ok !== f.checkPass.requests) || warmup.sampleMismatches > 0 || !inProcess.allAnswered || !inProcessOff.allAnswered;
    if (wrongAnswers) log('CHECK FAILED: some answers were wrong (see above)');
    const undrained = figures.filter((f) => !f.drained).map((f) => f.name);
    if (undrained.length) log(`note: the load did not stop cleanly for ${undrained.join(', ')} (requests were cut off)`);

    const summary = {
      ...summaryHead('reads'),
      settings: {
        durationS: DURATION_S,
        rounds: ROUNDS,
        sliceS: SLICE_S,
        warmupS: WARMUP_S,
        connections: CONNECTIONS,
        pipelining: 1,
        loadAverageAtStart,
        machineBusyPercentBefore: busyBefore,
        activeOrders: ORDER_COUNT,
        finishedOrders: FINISHED_COUNT,
        rows: seeded.rows,
        statusMix: seeded.statusCounts,
        insertS: seeded.insertS,
        hotOrders: HOT_ORDERS,
        helloOrderBodyBytes: Buffer.byteLength(HELLO_ORDER_BODY),
        idDraw: 'uniform over the hot set, seeded (the same sequence for every server)',
        stampedeReaders: STAMPEDE,
        warmupPageSize: WARMUP_PAGE,
        mysqlDatabase: databaseName(MYSQL_URL),
        cachePrefix: CACHE_PREFIX,
        request: { method: 'GET', path: '/v1/orders/<id>', headers: ['authorization'] },
        reqPerSecDefinition: 'responses / sum over the slices of (last response - first request), measured load only (not the warm-up)',
        latencyDefinition: "autocannon's per-response time (ms), percentiles over every response of every slice",
      },
      warmup,
      stampede: { inProcess, inProcessCacheOff: inProcessOff, http: httpStampede },
      servers: Object.fromEntries(figures.map((f) => [f.name, f])),
      ratios: { cachedOverUncached, cachedOverHello, cachedOverHelloOrder, perRound: roundRatios },
      cpuPerResponseUs: { serverPlusLoadGenerator: cpuCost, ratiosWhereCpuIsTheLimit: cpuModelRatios },
      targets: { ...TARGET, verdicts },
      checks: wrongAnswers ? 'FAILED' : 'ok',
    };
    writeResultsFile('reads', `${JSON.stringify(summary, round, 2)}\n`);
    return wrongAnswers ? 1 : 0;
  } finally {
    const deleted = await deleteBenchKeys(redis).catch(() => 0);
    log(`bench: deleted the ${fmt(deleted)} keys under ${CACHE_PREFIX}: and ${QUEUE_PREFIX}: (the database ${databaseName(MYSQL_URL)} is kept until the next run)`);
    redis.disconnect();
    await seeded?.db.destroy();
  }
}

runBench(main, 'servers');
