/**
 * The capacity search: the intake offered each rate of the list in turn, for the step's length,
 * with no pause between steps (the pipeline carries its backlog from one step into the next, as
 * it would on a rising lunch peak). At each step's start and end: MySQL's clock, CPU per process,
 * the round-trip counters and Redis memory. The search stops after the first step that is not
 * sustainable (and --beyond-knee more), or when the bench's bound draws near.
 */
import { performance } from 'node:perf_hooks';
import { cpuSnapshot, cpuWindow, type CpuWindow } from '../lib/cpu.ts';
import { fmt, log } from '../lib/log.ts';
import { runOrderLoad, type LoadCounters } from '../lib/order-load.ts';
import { usedMemory } from '../lib/redis-keys.ts';
import type { BenchRun } from '../lib/run-bench.ts';
import { mean } from '../lib/stats.ts';
import { readRoundTrips, type RoundTripCounters } from './round-trips.ts';
import type { Sampler } from './sampler.ts';
import { mysqlNow, orderBodies, QUEUE_PREFIX, type World } from './setup.ts';
import { TARGETS, type PipelineSettings } from './settings.ts';

export interface StepRecord {
  readonly rate: number;
  /** The sampler's clock at the step's start and end (s), and MySQL's. */
  readonly fromS: number;
  readonly toS: number;
  readonly mysqlFrom: string;
  readonly mysqlTo: string;
  readonly sent: number;
  readonly accepted: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly windowS: number;
  readonly httpP50Ms: number;
  readonly httpP99Ms: number;
  readonly cpu: CpuWindow;
  readonly roundTripsFrom: RoundTripCounters;
  readonly roundTripsTo: RoundTripCounters;
  readonly redisFrom: number;
  readonly redisTo: number;
  /** Open orders and owed notifications at the start and end, and the means over the first and last thirds. */
  readonly backlog: Backlog;
  /** Judged at the step's end: backlog flat and no order older than the p99 bound left undispatched. */
  readonly looksSustainable: boolean;
}

export interface Backlog {
  readonly ordersStart: number;
  readonly ordersEnd: number;
  readonly notificationsStart: number;
  readonly notificationsEnd: number;
  readonly ordersFirstThird: number;
  readonly ordersLastThird: number;
  readonly notificationsFirstThird: number;
  readonly notificationsLastThird: number;
  /** Growth beyond one second of arrivals (notifications: two per order) counts as growing. */
  readonly flat: boolean;
}

function backlogOver(sampler: Sampler, fromS: number, toS: number, rate: number): Backlog {
  const samples = sampler.between(fromS, toS);
  const third = (toS - fromS) / 3;
  const first = samples.filter((x) => x.t <= fromS + third);
  const last = samples.filter((x) => x.t >= toS - third);
  const b = {
    ordersStart: samples[0]?.openOrders ?? Number.NaN,
    ordersEnd: samples.at(-1)?.openOrders ?? Number.NaN,
    notificationsStart: samples[0]?.pendingNotifications ?? Number.NaN,
    notificationsEnd: samples.at(-1)?.pendingNotifications ?? Number.NaN,
    ordersFirstThird: mean(first.map((x) => x.openOrders)),
    ordersLastThird: mean(last.map((x) => x.openOrders)),
    notificationsFirstThird: mean(first.map((x) => x.pendingNotifications)),
    notificationsLastThird: mean(last.map((x) => x.pendingNotifications)),
  };
  const flat = b.ordersLastThird - b.ordersFirstThird <= rate && b.notificationsLastThird - b.notificationsFirstThird <= 2 * rate;
  return { ...b, flat };
}

/** Orders created in the window up to maxAgeMs before its end that are not dispatched yet (each one is past the p99 bound). */
async function overdue(world: World, mysqlFrom: string, mysqlTo: string, maxAgeMs: number): Promise<number> {
  const rows = (await world.db.raw(
    `SELECT COUNT(*) AS n FROM orders WHERE created_at >= ? AND created_at < DATE_SUB(?, INTERVAL ? MICROSECOND) AND status IN ('CREATED', 'PRICED')`,
    [mysqlFrom, mysqlTo, maxAgeMs * 1000],
  )) as [{ n: number | string }[]];
  return Number(rows[0][0]?.n ?? 0);
}

export async function capacitySearch(world: World, sampler: Sampler, counters: LoadCounters, s: PipelineSettings, run: BenchRun): Promise<StepRecord[]> {
  const bodies = orderBodies(world.merchants);
  const keyPrefix = `pipe-${Date.now().toString(36)}`;
  const steps: StepRecord[] = [];
  let pastKnee = -1;
  const readCounters = () => readRoundTrips({ db: world.db, redis: world.redis, queuePrefix: QUEUE_PREFIX, providerStats: () => world.fleet.providerStats() });
  for (const [i, rate] of s.steps.entries()) {
    // Leave the drain, the top-up and the checks their share of the bound.
    if (run.stopping || run.secondsLeft() < s.stepSeconds + s.drainBoundS + 120) {
      log(`  step ${i + 1} (${fmt(rate)}/s) not run: the bench's time bound is near`);
      break;
    }
    world.fleet.check();
    sampler.phase = `step ${fmt(rate)}/s`;
    log(`\n== step ${i + 1}/${s.steps.length}: ${fmt(rate)} orders/s offered for ${s.stepSeconds} s`);
    const [mysqlFrom, roundTripsFrom, redisFrom] = await Promise.all([mysqlNow(world.db), readCounters(), usedMemory(world.redis)]);
    const cpuFrom = cpuSnapshot(world.cpuGroups);
    const fromS = sampler.now();
    const acceptedBefore = counters.status202; // the counters run on across steps
    const load = await runOrderLoad({
      url: world.fleet.webUrl,
      apiKey: world.apiKey,
      keyPrefix: `${keyPrefix}-${i}`,
      bodies,
      connections: Math.min(s.connections, rate),
      seconds: s.stepSeconds,
      rate: { overall: rate, stagger: true },
      collectIds: true,
      counters,
      startedAt: performance.now(),
    });
    const cpu = cpuWindow(cpuFrom, cpuSnapshot(world.cpuGroups));
    const toS = sampler.now();
    const [mysqlTo, roundTripsTo, redisTo] = await Promise.all([mysqlNow(world.db), readCounters(), usedMemory(world.redis)]);
    const backlog = backlogOver(sampler, fromS, toS, rate);
    const late = await overdue(world, mysqlFrom, mysqlTo, TARGETS.maxP99Ms);
    const accepted = load.status202 - acceptedBefore;
    // More than 1% of the step's orders already past the bound: its p99 is past it too.
    const looksSustainable = backlog.flat && late <= 0.01 * accepted;
    steps.push({
      rate,
      fromS,
      toS,
      mysqlFrom,
      mysqlTo,
      sent: load.sent,
      accepted,
      non2xx: load.result.non2xx,
      errors: load.result.errors + load.result.timeouts,
      windowS: load.windowS,
      httpP50Ms: load.result.latency.p50,
      httpP99Ms: load.result.latency.p99,
      cpu,
      roundTripsFrom,
      roundTripsTo,
      redisFrom,
      redisTo,
      backlog,
      looksSustainable,
    });
    log(
      `  accepted ${fmt(accepted)} (${fmt(accepted / load.windowS)}/s, HTTP p99 ${load.result.latency.p99} ms, ${fmt(load.result.non2xx)} non-2xx); ` +
        `open orders ${fmt(backlog.ordersStart)} -> ${fmt(backlog.ordersEnd)}, notifications owed ${fmt(backlog.notificationsStart)} -> ${fmt(backlog.notificationsEnd)}; ` +
        `${fmt(late)} orders older than ${fmt(TARGETS.maxP99Ms)} ms not dispatched: ${looksSustainable ? 'looks sustainable' : 'NOT sustainable'}`,
    );
    if (!looksSustainable && pastKnee < 0) pastKnee = 0;
    else if (pastKnee >= 0) pastKnee += 1;
    if (pastKnee >= s.beyondKnee) break;
  }
  return steps;
}

/** An unmeasured load at half the first step's rate, then a drain: the fleet's first orders pay for JIT and connections. */
export async function warmUp(world: World, sampler: Sampler, counters: LoadCounters, s: PipelineSettings, run: BenchRun): Promise<void> {
  if (s.warmupSeconds === 0) return;
  const rate = Math.max(1, Math.round((s.steps[0] ?? 100) / 2));
  log(`\n== warm-up: ${fmt(rate)} orders/s for ${s.warmupSeconds} s (not measured), then a drain`);
  sampler.phase = 'warm-up';
  await runOrderLoad({
    url: world.fleet.webUrl,
    apiKey: world.apiKey,
    keyPrefix: `pipe-warm-${Date.now().toString(36)}`,
    bodies: orderBodies(world.merchants),
    connections: Math.min(s.connections, rate),
    seconds: s.warmupSeconds,
    rate: { overall: rate, stagger: true },
    collectIds: true,
    counters,
    startedAt: performance.now(),
  });
  await drain(world, sampler, s.drainBoundS, run);
}

/** Waits (bounded) until no order is CREATED or PRICED, no notification is owed and the pipeline's queues are empty. */
export async function drain(world: World, sampler: Sampler, boundS: number, run: BenchRun): Promise<{ drained: boolean; seconds: number }> {
  sampler.phase = 'drain';
  const t0 = performance.now();
  while ((performance.now() - t0) / 1000 < boundS && !run.stopping) {
    world.fleet.check();
    const last = await sampler.take();
    const queuesEmpty = Object.entries(last.queues).every(([q, n]) => q === 'maintenance' || n === 0);
    if (last.openOrders === 0 && last.pendingNotifications === 0 && queuesEmpty) return { drained: true, seconds: (performance.now() - t0) / 1000 };
    await new Promise((r) => setTimeout(r, 500)); // drain poll
  }
  return { drained: false, seconds: (performance.now() - t0) / 1000 };
}
