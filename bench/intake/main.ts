/**
 * Intake bench: `npm run bench:intake`. In one run and under the same load (autocannon,
 * --connections, pipelining 1, --seconds each after a --warmup), four servers get the very same
 * request (POST /v1/orders, the contract's body, a real API key, a unique Idempotency-Key each):
 * naive (one INSERT and one queue.add per request), Courier's intake, echo (Fastify parsing the
 * body and answering 202, nothing stored) and hello (a constant). After each writing server the
 * rows in `orders` must equal its 202 answers exactly (exit code 1 if not).
 *
 * Targets: Courier >= 4x naive req/s with p99 <= 25 ms (issue 2); Courier >= 0.3x echo req/s at
 * p99 <= 25 ms (issue 10). Settings: `npm run bench:intake -- --help`.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig } from '../../shared/config.ts';
import { seedDemoData } from '../../shared/demo/seed-demo-data.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { QUEUE_NAMES } from '../../shared/queues/queue-names.ts';
import { dropBenchDatabase, openBenchDatabase } from '../lib/bench-database.ts';
import { fmt, log, printTable } from '../lib/log.ts';
import { deleteKeysUnder } from '../lib/redis-keys.ts';
import { sectionHeading, summaryHead, writeResults } from '../lib/results.ts';
import { runBench } from '../lib/run-bench.ts';
import { choices, int, parseSettings, text } from '../lib/settings.ts';
import { Targets } from '../lib/targets.ts';
import { measureServer, type ServerFigures } from './measure.ts';
import { ALL_SERVERS, SERVER_ROLES, type ServerName } from './servers.ts';

/** The bench's client may go as fast as the load: the rate limiter's check runs (and costs what it costs), it never refuses. */
const BENCH_RATE = { ratePerSecond: MAX_RATE_PER_SECOND };

const settings = parseSettings('intake', 'Courier\'s intake against a naive intake, an echo route and hello-world, under the same load.', {
  seconds: int('--seconds', 'BENCH_DURATION_S', 10, 1, 600, 'measured load per server, s'),
  warmup: int('--warmup', 'BENCH_WARMUP_S', 2, 0, 60, 'unmeasured load before it, s'),
  connections: int('--connections', 'BENCH_CONNECTIONS', 64, 1, 1024, 'load generator connections'),
  servers: choices('--servers', 'BENCH_SERVERS', ALL_SERVERS, 'servers to run'),
  mysqlUrl: text('--mysql-url', 'BENCH_MYSQL_URL', 'mysql://root@127.0.0.1:3306/courier_bench_intake', 'the bench database (dropped, created and migrated; dropped at the end)'),
  redisUrl: text('--redis-url', 'BENCH_REDIS_URL', 'redis://127.0.0.1:6379', 'Redis (the bench uses its own queue prefix and deletes its keys)'),
});
const s = settings.values;
const QUEUE_PREFIX = '{courier-bench}';
const TARGET = { minRatioVsNaive: 4, minRatioVsEcho: 0.3, maxP99Ms: 25 } as const;
const ORDER_BODY = JSON.stringify({
  merchantId: '1001', // a demo merchant (seedDemoData)
  dropoff: { lat: 31.2304, lng: 121.4737, address: '88 Century Avenue, Pudong', phone: '+86 21 5555 0101' },
  items: [
    { sku: 'NDL-1', name: 'Beef noodles', qty: 2, priceCents: 3800 },
    { sku: 'TEA-2', name: 'Jasmine tea', qty: 1, priceCents: 1200 },
  ],
  note: 'intake bench',
});
const BOUND_S = 120 + s.servers.length * (s.warmup + s.seconds + 15 + 60 + 20 + 40);

runBench('intake', BOUND_S, async (run) => {
  log(`bench: intake, ${s.servers.join(', ')}; ${s.seconds} s each after a ${s.warmup} s warm-up, ${s.connections} connections; bounded at ${BOUND_S} s`);
  const config = loadConfig({ MYSQL_URL: s.mysqlUrl, REDIS_URL: s.redisUrl });
  const { db, name } = await openBenchDatabase(config, { fresh: true });
  run.onCleanup('close the database pool', () => db.destroy());
  run.onCleanup(`drop the database ${name}`, () => dropBenchDatabase(config));
  await seedDemoData(db);
  const client = await createApiClient(db, new IdGenerator(config.nodeId), `intake bench ${new Date().toISOString()}`, BENCH_RATE);
  const redis = new Redis(s.redisUrl, { maxRetriesPerRequest: 3 });
  run.onCleanup('disconnect from Redis', async () => redis.disconnect());
  run.onCleanup(`delete the keys under ${QUEUE_PREFIX}`, () => deleteKeysUnder(redis, [QUEUE_PREFIX]));
  const queues = Object.values(QUEUE_NAMES).map((q) => new Queue(q, { connection: redis, prefix: QUEUE_PREFIX }));
  run.onCleanup('close the queue handles', () => Promise.all(queues.map((q) => q.close())));
  const ordersQueue = queues.find((q) => q.name === QUEUE_NAMES.orders)!;
  const ctx = {
    db,
    apiKey: client.key,
    ordersQueue,
    body: ORDER_BODY,
    seconds: s.seconds,
    warmupS: s.warmup,
    connections: s.connections,
    runTag: Date.now().toString(36),
    env: { MYSQL_URL: s.mysqlUrl, REDIS_URL: s.redisUrl, QUEUE_PREFIX },
    reset: async () => {
      await db.raw('TRUNCATE TABLE orders');
      await db.raw('TRUNCATE TABLE order_events');
      await deleteKeysUnder(redis, [QUEUE_PREFIX]);
    },
  };
  const figures: ServerFigures[] = [];
  for (const server of s.servers) figures.push(await measureServer(server, ctx));

  const by = (n: ServerName) => figures.find((f) => f.name === n);
  const [naive, courier, echo, hello] = [by('naive'), by('courier'), by('echo'), by('hello')];
  const ratio = (a?: ServerFigures, b?: ServerFigures) => (a && b ? a.reqPerSec / b.reqPerSec : null);
  const ratios = { courierOverNaive: ratio(courier, naive), courierOverEcho: ratio(courier, echo), courierOverHello: ratio(courier, hello) };
  const clean = courier ? courier.non2xx === 0 && courier.errors === 0 : false;
  const p99Ok = courier ? courier.latencyMs.p99 <= TARGET.maxP99Ms : false;
  const targets = new Targets();
  targets.add(
    `Courier >= ${TARGET.minRatioVsNaive}x naive req/s, p99 <= ${TARGET.maxP99Ms} ms (issue 2)`,
    ratios.courierOverNaive === null ? 'needs naive and courier' : `${fmt(ratios.courierOverNaive, 2)}x (${fmt(courier!.reqPerSec)} / ${fmt(naive!.reqPerSec)} req/s), p99 ${courier!.latencyMs.p99} ms`,
    ratios.courierOverNaive === null ? null : ratios.courierOverNaive >= TARGET.minRatioVsNaive && p99Ok && clean,
  );
  targets.add(
    `Courier >= ${TARGET.minRatioVsEcho}x echo req/s, p99 <= ${TARGET.maxP99Ms} ms (issue 10)`,
    ratios.courierOverEcho === null ? 'needs echo and courier' : `${fmt(ratios.courierOverEcho, 2)}x (${fmt(courier!.reqPerSec)} / ${fmt(echo!.reqPerSec)} req/s), p99 ${courier!.latencyMs.p99} ms`,
    ratios.courierOverEcho === null ? null : ratios.courierOverEcho >= TARGET.minRatioVsEcho && p99Ok && clean,
  );
  const header = ['server', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'server µs/resp', 'rows = 202s', 'jobs'];
  const rows = figures.map((f) => [
    f.name,
    fmt(f.reqPerSec),
    fmt(f.latencyMs.p50),
    fmt(f.latencyMs.p99),
    fmt(f.non2xx),
    fmt(f.errors),
    fmt(f.serverCpuUsPerResponse),
    f.rowCheck === 'n/a' ? 'n/a' : `${fmt(f.rows)} ${f.rowCheck}`,
    f.jobs === null ? 'n/a' : fmt(f.jobs),
  ]);
  log('\n== results');
  printTable(header, rows, '');
  log(`Courier / naive ${fmt(ratios.courierOverNaive, 2)}x, / echo ${fmt(ratios.courierOverEcho, 2)}x, / hello ${fmt(ratios.courierOverHello, 2)}x`);
  targets.print();
  const rowCheckFailed = figures.some((f) => f.rowCheck === 'FAILED');
  if (rowCheckFailed) log('ROW CHECK FAILED: rows in orders differ from the 202 answers');
  const batches = courier?.intakeBatches;
  writeResults({
    bench: 'intake',
    fullRun: settings.changed.length === 0,
    summary: { ...summaryHead('intake', settings.changed), settings: { ...s, queuePrefix: QUEUE_PREFIX, bodyBytes: Buffer.byteLength(ORDER_BODY) }, servers: Object.fromEntries(figures.map((f) => [f.name, f])), ratios, targets: targets.results, rowCheck: rowCheckFailed ? 'FAILED' : 'ok' },
    markdown: [
      sectionHeading('Intake (`npm run bench:intake`)', settings.changed),
      '',
      `${s.seconds} s per server after a ${s.warmup} s warm-up, ${s.connections} connections, pipelining 1; POST /v1/orders with the contract's body, a real API key and a unique Idempotency-Key each.`,
      '',
      targets.markdown(),
      '',
      `| ${header.join(' | ')} |`,
      `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
      ...figures.map((f) => `- ${f.name}: ${SERVER_ROLES[f.name]}`),
      ...(batches ? [`- Courier's batches: ${fmt(batches.batches)} of ${fmt(batches.avgOrdersPerBatch, 1)} orders, ${fmt(batches.avgCommitMs, 2)} ms to commit one.`] : []),
      `- Every 202 a row: ${rowCheckFailed ? '**FAILED**' : 'yes'}.`,
    ].join('\n'),
  });
  return rowCheckFailed ? 1 : 0;
});
