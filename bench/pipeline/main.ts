/**
 * Pipeline bench: `npm run bench:pipeline` (issue 10). A capacity search of the fleet as the
 * Procfile runs it:
 *
 *   setup      a fresh database, a Redis of the bench's own, the fleet (web, worker, notifier,
 *              scheduler, dev provider), bench zones and riders, a rider simulator (setup.ts);
 *   steps      the intake offered 250, 500, 1,000, 1,500, 2,000 ... orders/s, --step-seconds each;
 *              per step: accepted, dispatched, p50/p99 202 -> DISPATCHED, the backlog at its start
 *              and end, CPU per order per process, round trips per order, Redis memory (steps.ts);
 *              it stops past the knee, then drains;
 *   memory     Redis growth once --memory-orders went through end to end with nobody reading,
 *              topped up at the sustainable rate if the steps did not get there (memory.ts);
 *   reads      a reader polling a fixed set of accepted orders while orders keep coming: the
 *              cache's memory against that set's worth (read-phase.ts);
 *   checks     every 202 a row and an end state, one rider per order, one notification per kind
 *              (checks.ts): a failure is loud and the exit code 1.
 *
 * It prints the sustainable rate (the highest step with a flat backlog and p99 <= 2 s) and
 * PASS/FAIL per target, writes bench/results/pipeline-latest.json, its RESULTS.md section and two
 * charts (charts.ts). Settings: `npm run bench:pipeline -- --help`.
 */
import { relative } from 'node:path';
import { fmt, log, progress } from '../lib/log.ts';
import { ROOT } from '../lib/process/line-process.ts';
import { newLoadCounters } from '../lib/order-load.ts';
import { sectionHeading, summaryHead, writeResults } from '../lib/results.ts';
import { runBench } from '../lib/run-bench.ts';
import { Targets } from '../lib/targets.ts';
import { cpuSnapshot, cpuWindow } from '../lib/cpu.ts';
import { drawPipelineCharts } from './charts.ts';
import { exactlyOnceChecks } from './checks.ts';
import { processedOrders, redisState, topUp } from './memory.ts';
import { readPhase } from './read-phase.ts';
import { printReport, reportMarkdown } from './report.ts';
import { Sampler } from './sampler.ts';
import { settings, TARGETS } from './settings.ts';
import { setUpWorld } from './setup.ts';
import { stepFigures, sustainableStep, type StepFigures } from './step-figures.ts';
import { capacitySearch, drain, warmUp } from './steps.ts';

const s = settings.values;
const BOUND_S = 240 + s.warmupSeconds + s.drainBoundS + s.steps.length * (s.stepSeconds + 10) + s.drainBoundS + (s.memoryOrders > 0 ? s.memoryBoundS : 0) + (s.readOrders > 0 ? s.readSeconds + s.drainBoundS : 0);

runBench('pipeline', BOUND_S, async (run) => {
  log(
    `bench: pipeline capacity search; steps ${s.steps.map((r) => fmt(r)).join(', ')} orders/s, ${s.stepSeconds} s each; bounded at ${fmt(BOUND_S)} s` +
      (settings.changed.length ? `; changed: ${settings.changed.join(' ')}` : '; every setting at its default'),
  );
  const world = await setUpWorld(s, run);
  const counters = newLoadCounters();
  const sampler = new Sampler({ db: world.db, redis: world.redis, queues: world.queues, accepted: () => counters.status202 });
  run.onCleanup('stop the sampler', () => sampler.stop());
  sampler.start((x) =>
    progress(
      `  [${x.phase} ${fmt(x.t)} s] 202 ${fmt(x.accepted)} | dispatched ${fmt(x.dispatched)} | open ${fmt(x.openOrders)} | notifications owed ${fmt(x.pendingNotifications)} | ` +
        `queues ${Object.entries(x.queues).map(([q, n]) => `${q} ${fmt(n)}`).join(' ')} | redis ${fmt(x.redisUsedMemory / 1048576, 1)} MB`,
      Math.round(x.t) % 5 === 0,
    ),
  );
  await warmUp(world, sampler, counters, s, run);
  const redisBefore = await redisState(world);
  const cpuFrom = cpuSnapshot(world.cpuGroups);

  const steps = await capacitySearch(world, sampler, counters, s, run);
  log(`\n== drain (at most ${s.drainBoundS} s)`);
  const drained = await drain(world, sampler, s.drainBoundS, run);
  const searchCpu = cpuWindow(cpuFrom, cpuSnapshot(world.cpuGroups));
  const searchOrders = await processedOrders(world.db);
  log(`  ${drained.drained ? `drained in ${fmt(drained.seconds, 1)} s` : `NOT drained within ${s.drainBoundS} s`}; ${fmt(searchOrders)} orders processed`);

  const figures: StepFigures[] = [];
  for (const step of steps) figures.push(await stepFigures(world.db, step));
  const sustainable = sustainableStep(figures);
  // Below the knee: the sustainable rate, or 80% of the most that was ever dispatched.
  const steadyRate = Math.max(10, Math.round(sustainable?.rate ?? 0.8 * Math.max(10, ...figures.map((f) => f.dispatchedPerSec))));
  log(`\n== the sustainable rate: ${sustainable ? `${fmt(sustainable.rate)} orders/s` : 'none of the steps'} (flat backlog, p99 202 -> DISPATCHED <= ${fmt(TARGETS.maxP99Ms)} ms)`);

  const memory = s.memoryOrders > 0 && drained.drained ? await topUp(world, sampler, counters, s, steadyRate, run) : null;
  const processed = await processedOrders(world.db);
  const redisAfter = await redisState(world);
  const reads = s.readOrders > 0 && !run.stopping ? await readPhase(world, sampler, counters, s, steadyRate) : null;
  if (reads) await drain(world, sampler, s.drainBoundS, run);

  await sampler.stop();
  await world.riders.stop();
  await world.fleet.stop(['web', 'scheduler', 'worker', 'notifier']);
  const provider = await world.fleet.providerStats();
  await world.fleet.stop();
  const checks = await exactlyOnceChecks(world.db, counters, sampler.samples, provider);

  const dispatchedAll = figures.reduce((n, f) => n + f.dispatched, 0);
  const cpuMsPerOrder = searchCpu.ourMs / Math.max(1, searchOrders);
  const machineMsPerOrder = searchCpu.machineBusyMs === null ? null : searchCpu.machineBusyMs / Math.max(1, searchOrders);
  const growth = redisAfter.usedMemory - redisBefore.usedMemory;
  const targets = new Targets();
  targets.add(
    `CPU per dispatched order, load + drain, every process <= ${TARGETS.maxCpuMsPerOrder} ms`,
    `${fmt(cpuMsPerOrder, 2)} ms over the steps and their drain (${fmt(searchOrders)} orders; fleet, MariaDB, Redis, the bench); the whole machine ${fmt(machineMsPerOrder, 2)} ms (it is shared)`,
    searchOrders > 0 ? cpuMsPerOrder <= TARGETS.maxCpuMsPerOrder : null,
  );
  targets.add(`sustainable rate >= ${fmt(TARGETS.minSustainableRate)} orders/s`, sustainable ? `${fmt(sustainable.rate)}/s (p99 ${fmt(sustainable.latencyMs.p99)} ms)` : 'no step was sustainable', sustainable !== null && sustainable.rate >= TARGETS.minSustainableRate);
  targets.add(
    `Redis growth after ${fmt(TARGETS.redisAfterOrders)} orders end to end, nobody reading <= ${fmt(TARGETS.maxRedisGrowthBytes / 1048576)} MB`,
    `${fmt(growth / 1048576, 1)} MB after ${fmt(processed)} orders (cache ${fmt(redisAfter.cache.keys)} keys ${fmt(redisAfter.cache.bytes / 1048576, 1)} MB, queues ${fmt(redisAfter.queues.bytes / 1048576, 1)} MB)`,
    processed >= TARGETS.redisAfterOrders ? growth <= TARGETS.maxRedisGrowthBytes : null,
  );
  const readBound = reads?.readSetBytes ?? null;
  targets.add(
    `Redis with ${fmt(s.readOrders)} orders read over and over: bounded by those orders' worth`,
    reads
      ? `the cache ${fmt(reads.cacheAfter.keys)} keys, ${fmt(reads.cacheAfter.bytes / 1048576, 1)} MB, against ${fmt(reads.readOrders)} entries of ~${fmt(reads.entryBytes)} B = ${fmt((readBound ?? Number.NaN) / 1048576, 1)} MB`
      : 'no read phase',
    reads && readBound !== null ? reads.cacheAfter.bytes <= 1.25 * readBound : null,
  );
  printReport(steps, figures, sustainable, checks, targets);

  const notes = [
    `${fmt(dispatchedAll)} orders dispatched during the steps; CPU from /proc, MariaDB's and its counters shared with whatever else runs on the machine; Redis ${s.privateRedis ? "a redis-server of the bench's own" : 'the shared one'}.`,
    drained.drained ? `Drained ${fmt(drained.seconds, 1)} s after the last step.` : `NOT drained within ${s.drainBoundS} s after the last step.`,
  ];
  const chartInput = {
    steps: figures.map((f) => ({ rate: f.rate, dispatchedPerSec: f.dispatchedPerSec, acceptedPerSec: f.acceptedPerSec, latencyMs: f.latencyMs, cpuUsPerOrder: f.cpuUsPerOrder, sustainable: f.sustainable })),
    sustainableRate: sustainable?.rate ?? null,
    targets: { maxP99Ms: TARGETS.maxP99Ms, maxCpuMsPerOrder: TARGETS.maxCpuMsPerOrder },
    run: summaryHead('pipeline', settings.changed).run,
  };
  writeResults({
    bench: 'pipeline',
    fullRun: settings.changed.length === 0,
    summary: {
      ...summaryHead('pipeline', settings.changed),
      settings: s,
      fleet: { dispatchWindowMs: world.fleetConfig.dispatchWindowMs, orderWorkerConcurrency: world.fleetConfig.orderWorkerConcurrency, notifierConcurrency: world.fleetConfig.notifierConcurrency, cpuThreads: world.fleetConfig.cpuThreads, dbPoolMax: world.fleetConfig.dbPoolMax },
      targets: targets.results,
      sustainableRate: sustainable?.rate ?? null,
      chart: chartInput,
      steps: steps.map((step, i) => ({ ...step, roundTripsFrom: undefined, roundTripsTo: undefined, figures: figures[i] })),
      search: { drained, orders: searchOrders, cpu: searchCpu, cpuMsPerOrder, machineMsPerOrder },
      memory: { before: redisBefore, after: redisAfter, growthBytes: growth, processed, topUp: memory },
      reads,
      checks,
      provider,
      fleetWarnings: world.fleet.warnings(),
    },
    series: { key: 'samples', table: sampler.table() },
    markdown: reportMarkdown({
      heading: sectionHeading('Pipeline capacity (`npm run bench:pipeline`)', settings.changed),
      settingsLine: `steps ${s.steps.join(', ')} orders/s of ${s.stepSeconds} s, ${s.zones} zones x ${s.ridersPerZone} riders of capacity ${s.riderCapacity}, DISPATCH_WINDOW_MS ${world.fleetConfig.dispatchWindowMs}; the fleet from the Procfile.`,
      steps,
      figures,
      sustainable,
      checks,
      targets,
      notes,
    }),
  });
  const charts = await drawPipelineCharts(chartInput);
  log(`charts: ${charts.map((c) => relative(ROOT, c)).join(', ')}`);
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) log(`\nCHECK FAILED: ${failed.map((c) => c.check).join('; ')}`);
  return failed.length ? 1 : 0;
});
