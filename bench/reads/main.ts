/**
 * Reads bench: `npm run bench:reads`. On a database of its own holding --orders active orders and a
 * quarter as many finished ones, and a cache prefix of its own (its keys deleted before and after):
 *   1. warm-up (warm-up.ts): Courier's warmUpCacheJob over them; target 100,000 in at most 5 s;
 *   2. the cold-key stampede (stampede.ts): 1,000 concurrent reads of an uncached order, in process
 *      and over HTTP; target one query;
 *   3. the read load (servers.ts, loads.ts, get-load.ts): cached reads, 304s, the tracking view and
 *      /healthz (each a web process of its own), uncached reads, and a bare Fastify hello-world in a
 *      process of its own (the ceiling), taking turns; targets (issue 14), each over hello's req/s
 *      of the same run: cached >= 0.7x, 304 >= 0.8x, tracking >= 0.5x, /healthz >= 0.8x; and cached
 *      >= 3x uncached.
 * Exit code 1 if an answer was wrong. Settings: `npm run bench:reads -- --help`.
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { OrderCache } from '../../shared/cache/order-cache.ts';
import { databaseName } from '../../shared/db.ts';
import { readOrder } from '../../shared/orders/read-order.ts';
import { stopBenchProcess } from '../lib/bench-process.ts';
import { dropBenchDatabase } from '../lib/bench-database.ts';
import { runBench } from '../lib/run-bench.ts';
import { Targets } from '../lib/targets.ts';
import { loadConfig } from '../../shared/config.ts';
import { fmt, log, progress } from '../lib/log.ts';
import { prng } from '../lib/prng.ts';
import { sectionHeading, summaryHead, writeResults } from '../lib/results.ts';
import { runGetLoad, redisServerPid, machineBusyPercent } from './get-load.ts';
import { FINISHED_COUNT, type Seeded, seedDatabase, deleteBenchKeys } from './seed.ts';
import { type ServerFigures, type ServerUnderTest, startUnderTest, runSlice, figuresOf, logServerFigures, logInProcessStampede, logHttpStampede } from './servers.ts';
import { type ServerName, CHANGED, DURATION_S, CONNECTIONS, WARMUP_S, SLICE_WARMUP_S, WRK_SLICE_S, WRK_ROUNDS, ROUNDS, SLICE_S, ORDER_COUNT, HOT_ORDERS, STAMPEDE, WARMUP_PAGE, SERVERS, REDIS_URL, MYSQL_URL, CACHE_PREFIX, QUEUE_PREFIX, LOAD_SEED, START_TIMEOUT_MS, STOP_TIMEOUT_MS, LOAD_DRAIN_BOUND_S, TARGET, shared } from './settings.ts';
import { stampedeInProcess, stampedeOverHttp } from './stampede.ts';
import { logCpuPerResponse, logResultsTable } from './report.ts';
import { warmUp } from './warm-up.ts';
import { type WrkFigures, logWrkRounds, wrkCheck, wrkInstalled, wrkOverHello } from './wrk-check.ts';

// Main

const perServerS = WARMUP_S + DURATION_S + WRK_ROUNDS * (WRK_SLICE_S + LOAD_DRAIN_BOUND_S) + ROUNDS * SLICE_WARMUP_S + (ROUNDS + 1) * LOAD_DRAIN_BOUND_S + (START_TIMEOUT_MS + STOP_TIMEOUT_MS) / 1000 + 60;
const BOUND_S = Math.round(600 + SERVERS.length * perServerS);

runBench('reads', BOUND_S, async (run) => {

  log(
    `bench: reads, ${SERVERS.join(', ')}; ${fmt(ORDER_COUNT)} active orders (+ ${fmt(FINISHED_COUNT)} finished), hot set ${fmt(HOT_ORDERS)}; ${DURATION_S} s each in ${ROUNDS} turn${ROUNDS === 1 ? '' : 's'} (after a ${WARMUP_S} s warm-up, and an unmeasured lead-in of ${SLICE_WARMUP_S} s in each turn), ` +
      `${CONNECTIONS} connections, pipelining 1; node ${process.version}, ${cpus().length} CPUs (shared by the load generator, the server, MariaDB and Redis)`,
  );
  const loadAverageAtStart = loadavg();
  const busyBefore = await machineBusyPercent(1000);
  log(
    `bench: before the run: load average ${loadAverageAtStart.map((v) => fmt(v, 2)).join(', ')}, the machine ${busyBefore === null ? 'n/a' : `${fmt(busyBefore)}%`} busy ` +
      `of ${cpus().length * 100}% over a second (it is shared; see "the whole machine" below)`,
  );
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  run.onCleanup('disconnect from Redis', async () => redis.disconnect());
  run.onCleanup('delete the bench keys', async () => log(`bench: deleted the ${fmt(await deleteBenchKeys(redis))} keys under ${CACHE_PREFIX}: and ${QUEUE_PREFIX}:`));
  run.onCleanup(`drop the database ${databaseName(MYSQL_URL)}`, () => dropBenchDatabase(loadConfig({ MYSQL_URL, REDIS_URL })));
  let seeded: Seeded | undefined;
  run.onCleanup('close the database pool', async () => seeded?.db.destroy());
  {
    const stale = await deleteBenchKeys(redis);
    if (stale) log(`bench: deleted ${fmt(stale)} keys left under ${CACHE_PREFIX}: / ${QUEUE_PREFIX}: by an earlier run`);
    seeded = await seedDatabase();
    const { db, config, apiKey, activeIds, finishedIds, expected } = seeded;
    const cache = new OrderCache(redis, { prefix: CACHE_PREFIX, ttlMs: config.cacheTtlMs, finalTtlMs: config.cacheFinalTtlMs });

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
    shared.redisPid = await redisServerPid(redis);
    const warmup = await warmUp({ db, config, cache, redis, redisPid: shared.redisPid }, activeIds, finishedIds);
    shared.helloOrderBody = JSON.stringify((await readOrder(db, hot[0]!))!.order);

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
    let wrk: WrkFigures[] | null = null;
    try {
      for (const name of SERVERS) servers.push(await startUnderTest(name, { apiKey, hot, expected }));
      if (WARMUP_S > 0) {
        for (const under of servers) {
          progress(`  [${under.name}] warm-up load: ${WARMUP_S} s`, true);
          const run = await runGetLoad({ url: under.proc.url, load: under.load, hot, seconds: WARMUP_S, seed: LOAD_SEED - 1 });
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
        for (let k = 0; k < servers.length; k++) await runSlice(servers[(round + k) % servers.length]!, { hot }, round);
      }
      if (WRK_SLICE_S > 0 && wrkInstalled()) {
        log(`\n== 3b. the same servers under wrk (the issue's measure): one warm order, ${CONNECTIONS} connections, ${WRK_ROUNDS} rounds of ${WRK_SLICE_S} s each`);
        wrk = await wrkCheck(servers, hot[0]!, { rounds: WRK_ROUNDS, sliceS: WRK_SLICE_S, connections: CONNECTIONS, boundS: LOAD_DRAIN_BOUND_S });
        logWrkRounds(wrk);
      } else if (WRK_SLICE_S > 0) log('\n(wrk is not installed: its check is left out; `npm run bench:reads` installs it when run as root)');
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
    const overHello = (f: ServerFigures | undefined) => (f && hello ? f.reqPerSec / hello.reqPerSec : null);
    const notModified = by('not-modified');
    const tracking = by('tracking');
    const healthz = by('healthz');
    const httpStampede = cached?.stampede ?? null;
    const perRound = (over: ServerFigures | undefined) =>
      cached && over ? cached.slices.map((slice, i) => slice.reqPerSec / (over.slices[i]?.reqPerSec ?? Number.NaN)) : null;
    const perRoundOverHello = (f: ServerFigures | undefined) => (f && hello ? f.slices.map((slice, i) => slice.reqPerSec / (hello.slices[i]?.reqPerSec ?? Number.NaN)) : null);
    const roundRatios = {
      cachedOverUncached: perRound(uncached),
      cachedOverHello: perRound(hello),
      cachedOverHelloOrder: perRound(helloOrder),
      notModifiedOverHello: perRoundOverHello(notModified),
      trackingOverHello: perRoundOverHello(tracking),
      healthzOverHello: perRoundOverHello(healthz),
    };

    log('\n== results');
    logResultsTable(figures);
    const { cpuCost, cpuModelRatios } = logCpuPerResponse(figures);
    if (ROUNDS > 1) {
      const list = (ratios: number[] | null, asPercent: boolean) =>
        ratios ? ratios.map((r) => (asPercent ? `${fmt(r * 100)}%` : `${fmt(r, 2)}x`)).join(', ') : 'n/a';
      log(
        `per round: cached / uncached ${list(roundRatios.cachedOverUncached, false)}; over hello: cached ${list(roundRatios.cachedOverHello, false)}, ` +
          `304 ${list(roundRatios.notModifiedOverHello, false)}, tracking ${list(roundRatios.trackingOverHello, false)}, healthz ${list(roundRatios.healthzOverHello, false)}` +
          (roundRatios.cachedOverHelloOrder ? `; cached / hello-order ${list(roundRatios.cachedOverHelloOrder, true)}` : ''),
      );
    }
    const targets = new Targets();
    const add = (target: string, measured: string, pass: boolean | null) => void targets.add(target, measured, pass);
    add(
      `cached >= ${TARGET.minCachedOverUncached}x uncached req/s`,
      cachedOverUncached === null ? 'n/a' : `${fmt(cachedOverUncached, 2)}x (${fmt(cached!.reqPerSec)} / ${fmt(uncached!.reqPerSec)})`,
      cachedOverUncached === null ? null : cachedOverUncached >= TARGET.minCachedOverUncached,
    );
    const addOverHello = (what: string, f: ServerFigures | undefined, min: number) => {
      const ratio = overHello(f);
      add(
        `${what} >= ${min}x the bare hello-world's req/s`,
        ratio === null ? 'n/a' : `${fmt(ratio, 2)}x (${fmt(f!.reqPerSec)} / ${fmt(hello!.reqPerSec)})`,
        ratio === null ? null : ratio >= min,
      );
    };
    addOverHello('cached GET /v1/orders/:id', cached, TARGET.minCachedOverHello);
    addOverHello('If-None-Match -> 304', notModified, TARGET.minNotModifiedOverHello);
    addOverHello('tracking view (order + rider + ETA)', tracking, TARGET.minTrackingOverHello);
    addOverHello('GET /healthz (in the app)', healthz, TARGET.minHealthzOverHello);
    const wrkRatio = wrkOverHello(wrk);
    const addWrk = (what: string, name: ServerName, min: number) => {
      const ratio = wrkRatio[name];
      add(`${what} >= ${min}x the bare hello-world's req/s, under wrk`, ratio === undefined ? 'n/a' : `${fmt(ratio, 2)}x`, ratio === undefined ? null : ratio >= min);
    };
    addWrk('cached GET /v1/orders/:id', 'cached', TARGET.minCachedOverHello);
    addWrk('If-None-Match -> 304', 'not-modified', TARGET.minNotModifiedOverHello);
    addWrk('tracking view', 'tracking', TARGET.minTrackingOverHello);
    addWrk('GET /healthz (in the app)', 'healthz', TARGET.minHealthzOverHello);
    const twin = by('hello-twin');
    if (twin && hello) {
      const twinUnderWrk = wrkRatio['hello-twin'];
      log(
        `(information) the same bare hello-world against itself (hello-twin): ${fmt(twin.reqPerSec / hello.reqPerSec, 2)}x under autocannon` +
          `${twinUnderWrk === undefined ? '' : `, ${fmt(twinUnderWrk, 2)}x under wrk`}: how far this run's ratios stray with nothing changed`,
      );
    }
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

    targets.print();
    const wrongAnswers = figures.some((f) => f.checkPass.ok !== f.checkPass.requests) || warmup.sampleMismatches > 0 || !inProcess.allAnswered || !inProcessOff.allAnswered || (wrk?.some((f) => f.bad > 0) ?? false);
    if (wrongAnswers) log('CHECK FAILED: some answers were wrong (see above)');
    const undrained = figures.filter((f) => !f.drained).map((f) => f.name);
    if (undrained.length) log(`note: the load did not stop cleanly for ${undrained.join(', ')} (requests were cut off)`);

    const summary = {
      ...summaryHead('reads', CHANGED),
      settings: {
        durationS: DURATION_S,
        rounds: ROUNDS,
        sliceS: SLICE_S,
        warmupS: WARMUP_S,
        sliceWarmupS: SLICE_WARMUP_S,
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
        helloOrderBodyBytes: Buffer.byteLength(shared.helloOrderBody),
        idDraw: 'uniform over the hot set, seeded (the same sequence for every server)',
        stampedeReaders: STAMPEDE,
        warmupPageSize: WARMUP_PAGE,
        mysqlDatabase: databaseName(MYSQL_URL),
        cachePrefix: CACHE_PREFIX,
        requests: Object.fromEntries(figures.map((f) => [f.name, f.what])),
        reqPerSecDefinition: 'responses / sum over the slices of (last response - first request), measured load only (not the warm-up)',
        latencyDefinition: "autocannon's per-response time (ms), percentiles over every response of every slice",
      },
      warmup,
      stampede: { inProcess, inProcessCacheOff: inProcessOff, http: httpStampede },
      servers: Object.fromEntries(figures.map((f) => [f.name, f])),
      ratios: {
        cachedOverUncached,
        cachedOverHello,
        cachedOverHelloOrder,
        notModifiedOverHello: overHello(notModified),
        trackingOverHello: overHello(tracking),
        healthzOverHello: overHello(healthz),
        perRound: roundRatios,
      },
      cpuPerResponseUs: { serverPlusLoadGenerator: cpuCost, ratiosWhereCpuIsTheLimit: cpuModelRatios },
      wrk: wrk ? { sliceS: WRK_SLICE_S, rounds: WRK_ROUNDS, connections: CONNECTIONS, threads: 1, order: 'one warm order (the first of the hot set)', servers: wrk, overHello: wrkRatio } : null,
      targets: { ...TARGET, verdicts: targets.results },
      checks: wrongAnswers ? 'FAILED' : 'ok',
    };
    const header = ['server', 'req/s', 'p50 ms', 'p99 ms', 'wrong status', 'server µs/resp', 'load gen µs/resp', 'L1 / L2 / MySQL'];
    const rows = figures.map((f) => [f.name, fmt(f.reqPerSec), fmt(f.latencyMs.p50, 1), fmt(f.latencyMs.p99, 1), fmt(f.wrongStatus), fmt(f.serverCpuUsPerResponse), fmt(f.loadGeneratorCpuUsPerResponse), f.reads ? `${fmt(f.reads.l1)} / ${fmt(f.reads.l2)} / ${fmt(f.reads.mysql)}` : 'n/a']);
    writeResults({
      bench: 'reads',
      fullRun: CHANGED.length === 0,
      summary,
      markdown: [
        sectionHeading('Reads (`npm run bench:reads`)', CHANGED),
        '',
        `${fmt(ORDER_COUNT)} active orders (+ ${fmt(FINISHED_COUNT)} finished); requests for one of ${fmt(HOT_ORDERS)} hot ids, ${CONNECTIONS} connections, ${DURATION_S} s per server in ${ROUNDS} turns; machine ${fmt(busyBefore)}% busy (of ${cpus().length * 100}%) before the run.`,
        '',
        ...figures.map((f) => `- ${f.name}: ${f.what} (${f.file})`),
        '',
        targets.markdown(),
        '',
        `| ${header.join(' | ')} |`,
        `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
        ...rows.map((r) => `| ${r.join(' | ')} |`),
        '',
        `- Warm-up: ${fmt(warmup.orders)} orders in ${fmt(warmup.seconds, 2)} s, ~${fmt(warmup.l2BytesPerOrder)} B each in Redis; ${warmup.sampleMismatches === 0 ? 'the sample equals readOrder' : '**a sample differs from readOrder**'}.`,
        `- Answers: ${wrongAnswers ? '**some were wrong**' : 'every checked answer right'}.`,
        wrk ? `- Under wrk (one warm order, ${CONNECTIONS} connections, ${WRK_ROUNDS} x ${WRK_SLICE_S} s each; each ratio the median of its turns over the hello-world's turns just around each): ${wrk.map((f) => `${f.name} ${fmt(f.reqPerSec)} req/s${f.name === 'hello' ? '' : ` (${fmt(wrkRatio[f.name] ?? Number.NaN, 2)}x)`}`).join(', ')}.` : '- Under wrk: left out (not installed).',
      ].join('\n'),
    });
    return wrongAnswers ? 1 : 0;
  }
});
