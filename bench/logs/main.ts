/**
 * Log volume: `npm run bench:logs` (issue 11). The fleet as the Procfile runs it, at LOG_LEVEL=info
 * with JSON lines, is sent --orders orders at --rate orders/s; once every one is dispatched and both
 * its notifications are sent, the info lines each process wrote since the load began are counted:
 * lines and bytes per 1,000 orders, the longest line, and the kinds of line they are. Settings:
 * `npm run bench:logs -- --help`. A short run (2,000 orders at 200/s: about a minute in all).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { dropBenchDatabase, openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders, orderBodies } from '../lib/bench-zones.ts';
import { Fleet } from '../lib/fleet/fleet.ts';
import { fmt, log, printTable } from '../lib/log.ts';
import { runOrderLoad } from '../lib/order-load.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { sectionHeading, summaryHead, writeResults } from '../lib/results.ts';
import { RiderSimulator } from '../lib/rider-simulator.ts';
import { runBench } from '../lib/run-bench.ts';
import { int, onOff, parseSettings, text } from '../lib/settings.ts';
import { LineCounter, type ProcessLines } from './line-counter.ts';

const settings = parseSettings('logs', 'Log volume: info lines per 1,000 orders of the Procfile fleet at LOG_LEVEL=info, orders sent at a fixed rate until dispatched and notified.', {
  orders: int('--orders', 'BENCH_LOG_ORDERS', 2000, 100, 100_000, 'orders sent'),
  rate: int('--rate', 'BENCH_LOG_RATE', 200, 10, 5000, 'orders/s'),
  zones: int('--zones', 'BENCH_ZONES', 10, 1, 99, 'bench zones, one merchant each'),
  ridersPerZone: int('--riders-per-zone', 'BENCH_RIDERS_PER_ZONE', 30, 1, 1000, 'riders per zone'),
  riderCapacity: int('--rider-capacity', 'BENCH_RIDER_CAPACITY', 10, 1, 1000, "a rider's capacity"),
  settleBoundS: int('--settle-bound', 'BENCH_SETTLE_BOUND_S', 120, 10, 1800, 'longest wait, after the load, for every order to be dispatched and notified, s'),
  mysqlUrl: text('--mysql-url', 'BENCH_MYSQL_URL', 'mysql://root@127.0.0.1:3306/courier_bench_logs', 'the bench database (dropped, created and migrated; dropped again at the end)'),
  keepDatabase: onOff('--keep-database', 'BENCH_KEEP_DATABASE', false, 'keep the bench database after the run'),
});
const s = settings.values;
const LOAD_S = Math.ceil(s.orders / s.rate);
const BOUND_S = 180 + LOAD_S + s.settleBoundS;

runBench('logs', BOUND_S, async (run) => {
  log(`bench: log volume; ${fmt(s.orders)} orders at ${fmt(s.rate)}/s, LOG_LEVEL=info; bounded at ${fmt(BOUND_S)} s`);
  const redis = await PrivateRedis.start();
  run.onCleanup('stop the private redis-server', () => redis.stop());
  const benchConfig = loadConfig({ MYSQL_URL: s.mysqlUrl, REDIS_URL: redis.url });
  const { db } = await openBenchDatabase(benchConfig, { fresh: true });
  run.onCleanup('close the database pool', () => db.destroy());
  if (!s.keepDatabase) run.onCleanup('drop the bench database', () => dropBenchDatabase(benchConfig));
  const merchants = benchMerchants(s.zones);
  await insertMerchants(db, merchants);
  await insertRiders(db, merchants, s.ridersPerZone, s.riderCapacity);
  const client = await createApiClient(db, new IdGenerator(benchConfig.nodeId), 'log volume bench', { ratePerSecond: MAX_RATE_PER_SECOND });

  const counter = new LineCounter();
  let counting = false;
  const fleet = await Fleet.create({
    logLevel: 'info',
    env: { MYSQL_URL: s.mysqlUrl, REDIS_URL: redis.url, QUEUE_PREFIX: '{courier-bench-logs}', CACHE_PREFIX: 'courier-bench-logs-cache' },
    echoAfterReady: false,
    onLine: (proc, stream, line) => {
      if (counting) counter.count(proc.name, stream, line);
    },
  });
  run.onCleanup('stop the fleet', () => fleet.stop());
  await fleet.start(fleet.names);
  const riders = new RiderSimulator(db, 200);
  riders.start();
  run.onCleanup('stop the rider simulator', () => riders.stop());

  counting = true;
  const started = performance.now();
  const load = await runOrderLoad({
    url: fleet.webUrl,
    apiKey: client.key,
    keyPrefix: `logs-${Date.now().toString(36)}`,
    bodies: orderBodies(merchants),
    connections: Math.min(50, s.rate),
    seconds: LOAD_S,
    rate: { overall: s.rate, stagger: true },
  });
  log(`  load: ${fmt(load.status202)} orders accepted of ${fmt(load.sent)} sent in ${fmt(load.windowS, 1)} s`);
  const settled = await settle(db, load.status202, s.settleBoundS, () => run.stopping);
  counting = false;
  const seconds = (performance.now() - started) / 1000;
  log(`  ${settled.done ? 'settled' : 'NOT settled'} ${fmt(seconds, 1)} s after the load began: ${fmt(settled.dispatched)} dispatched, ${fmt(settled.failed)} DISPATCH_FAILED, ${fmt(settled.sent)} notifications sent`);
  await riders.stop();
  await fleet.stop();

  const per1000 = (n: number) => (1000 * n) / Math.max(1, load.status202);
  const row = (name: string, c: ProcessLines) => [name, fmt(c.info), fmt(per1000(c.info), 1), fmt(per1000(c.infoBytes) / 1024, 1), fmt(c.longestInfoBytes), fmt(c.warnings)];
  const header = ['process', 'info lines', 'per 1,000 orders', 'KB per 1,000 orders', 'longest line (B)', 'warn/error lines'];
  const total = counter.total();
  const rows = [...[...counter.byProcess].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => row(name, c)), row('all', total)];
  printTable(header, rows);
  const kinds = [...total.infoKinds].sort((a, b) => b[1] - a[1]).slice(0, 12);
  for (const [kind, n] of kinds) log(`    ${fmt(n)} x "${kind}"`);

  writeResults({
    bench: 'logs',
    fullRun: settings.changed.length === 0,
    summary: {
      ...summaryHead('logs', settings.changed),
      settings: s,
      accepted: load.status202,
      settled,
      seconds,
      processes: Object.fromEntries([...counter.byProcess].map(([name, c]) => [name, { ...c, infoKinds: Object.fromEntries(c.infoKinds) }])),
      total: { ...total, infoKinds: Object.fromEntries(total.infoKinds) },
      infoLinesPer1000Orders: per1000(total.info),
    },
    markdown: [
      sectionHeading('Log volume (`npm run bench:logs`)', settings.changed),
      '',
      `${fmt(load.status202)} orders at ${fmt(s.rate)}/s through the Procfile fleet at \`LOG_LEVEL=info\` (JSON), ${s.zones} zones x ${s.ridersPerZone} riders; ` +
        `lines counted from the load's start until every order was dispatched and both its notifications sent (${fmt(seconds, 1)} s${settled.done ? '' : ', NOT settled'}).`,
      '',
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
      `Info lines by kind: ${kinds.map(([kind, n]) => `${fmt(n)} "${kind}"`).join(', ')}.`,
    ].join('\n'),
  });
  return settled.done ? 0 : 1;
});

/** Waits until every accepted order is dispatched (or failed to be) and both notifications of each dispatched one are sent. */
async function settle(db: Db, accepted: number, boundS: number, stopping: () => boolean): Promise<{ done: boolean; dispatched: number; failed: number; sent: number }> {
  const deadline = Date.now() + boundS * 1000;
  for (;;) {
    const [byStatus, [notifications]] = await Promise.all([
      db('orders').select('status').count({ n: '*' }).whereIn('status', ['DISPATCHED', 'DISPATCH_FAILED']).groupBy('status'),
      db('notifications').where({ status: 'SENT' }).count({ n: '*' }),
    ]);
    const rows = byStatus as unknown as { status: string; n: number | string }[];
    const of = (status: string) => Number(rows.find((row) => row.status === status)?.n ?? 0);
    const [dispatched, failed, sent] = [of('DISPATCHED'), of('DISPATCH_FAILED'), Number(notifications!.n)];
    const done = dispatched + failed >= accepted && sent >= 2 * dispatched;
    if (done || Date.now() > deadline || stopping()) return { done, dispatched, failed, sent };
    await sleep(500);
  }
}
