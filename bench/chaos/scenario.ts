/**
 * One scenario's timeline, the same for each: the steady load starts; calm; the scenario's fault;
 * calm again; the load stops (every refused order retried to its end); the orders settle; then the
 * checks (checks.ts and the scenario's own) and its row. The time to recover runs from the fault's
 * end until the intake answered 202 again and everything accepted before that end went through,
 * notifications included.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchRun } from '../lib/run-bench.ts';
import { summarize } from '../lib/stats.ts';
import { commonChecks, type Check, type Figures } from './checks.ts';
import { backlog, maxId, maxOrderId } from './orders-state.ts';
import type { Progress } from './progress.ts';
import type { ChaosSettings, ScenarioKey } from './settings.ts';
import { OrderTraffic } from './traffic/order-traffic.ts';
import { label, type Answer } from './traffic/post.ts';
import type { World } from './world.ts';

/** How often the recovery and the settling are polled. */
const POLL_MS = 250;

export interface ScenarioContext {
  readonly world: World;
  readonly s: ChaosSettings;
  readonly run: BenchRun;
  readonly traffic: OrderTraffic;
  /** A line for the scenario's details in the report. */
  note(line: string): void;
  /** Shows what the scenario is doing. */
  phase(name: string): void;
  /** Waits a planned part of the timeline (cut short when the run is stopping). */
  hold(seconds: number): Promise<void>;
}

export interface Scenario {
  readonly key: ScenarioKey;
  readonly title: string;
  /** Answers other than 202 a valid order may get in this scenario, e.g. "503 DB_UNAVAILABLE" (429 always may). */
  readonly refusals: readonly string[];
  /** False when there is no outage to recover from (the requests scenario). */
  readonly recovers: boolean;
  /** Runs the fault; resolves once it is over (the world whole again). */
  fault(ctx: ScenarioContext): Promise<void>;
  /** Its own checks, once its orders settled. */
  checks?(ctx: ScenarioContext, window: FaultWindow): Promise<Check[]>;
  /** Right answers of all the non-202 answers it expected, when it counts them (see the row). */
  rightCodes?(ctx: ScenarioContext): { right: number; total: number };
  /** Answers of its own traffic (beside the valid orders), for the latencies. */
  extraAnswers?(): readonly Answer[];
}

export interface FaultWindow {
  readonly start: number;
  readonly end: number;
}

export interface ScenarioResult extends Figures {
  readonly key: ScenarioKey;
  readonly title: string;
  /** Of the non-202 answers (429 aside), how many were the one the contract gives. */
  readonly rightCodes: { right: number; total: number };
  /** Seconds from the fault's end to recovery; null when it did not recover within the bound; undefined: no outage. */
  readonly recoverS: number | null | undefined;
  readonly p99FaultMs: number;
  readonly answersInFault: number;
  readonly checks: readonly Check[];
  readonly notes: readonly string[];
  readonly passed: boolean;
  readonly seconds: number;
}

export async function runScenario(scenario: Scenario, world: World, s: ChaosSettings, run: BenchRun, progress: Progress): Promise<ScenarioResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  const above = await maxOrderId(world.db);
  const traffic = new OrderTraffic({
    url: world.fleet.webUrl,
    apiKey: world.apiKey,
    bodies: world.bodies,
    keyPrefix: `chaos-${scenario.key}-${Date.now()}`,
    rate: s.rate,
    boundMs: s.requestBoundMs,
    retryForMs: s.retryForS * 1000,
  });
  const ctx: ScenarioContext = {
    world,
    s,
    run,
    traffic,
    note: (line) => void notes.push(line),
    phase: (name) => progress.phase(scenario.key, name),
    hold: async (seconds) => {
      const until = performance.now() + seconds * 1000;
      while (!run.stopping && performance.now() < until) await sleep(Math.min(200, until - performance.now())); // a planned duration
    },
  };
  const ticker = setInterval(() => progress.traffic(traffic), 500);
  try {
    ctx.phase('steady load');
    traffic.start();
    await ctx.hold(s.calmSeconds);
    const start = performance.now();
    await scenario.fault(ctx);
    const end = performance.now();
    const window = { start, end };
    const recovery = scenario.recovers ? watchRecovery(ctx, above, end) : null;
    ctx.phase('steady load after the fault');
    await ctx.hold(s.calmSeconds);
    ctx.phase('load stopped: last retries');
    await traffic.stop();
    ctx.phase('settling');
    const settled = await settle(ctx, above);
    if (!settled) notes.push(`not settled within ${s.settleBoundS} s: the checks below say what was left`);
    const recoverS = recovery ? await recovery.result() : undefined;

    const { checks, figures } = await commonChecks({
      db: world.db,
      traffic,
      above,
      providerUrl: world.fleet.providerUrl,
      refusals: scenario.refusals,
      fleetFailure: world.fleet.failure,
    });
    const own = scenario.checks ? await scenario.checks(ctx, window) : [];
    const all = [...checks, ...own];
    if (scenario.recovers) all.push({ check: 'recovered by itself', found: recoverS === null ? `not within ${s.settleBoundS} s` : `in ${recoverS?.toFixed(1)} s`, ok: recoverS !== null });
    const inFault = [...traffic.answers, ...(scenario.extraAnswers?.() ?? [])].filter((a) => a.sentAt >= start && a.sentAt <= end);
    return {
      key: scenario.key,
      title: scenario.title,
      ...figures,
      rightCodes: scenario.rightCodes ? scenario.rightCodes(ctx) : refusalTally(traffic.answers, scenario.refusals),
      recoverS,
      p99FaultMs: summarize(inFault.map((a) => a.ms)).p99,
      answersInFault: inFault.length,
      checks: all,
      notes,
      passed: all.every((c) => c.ok),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    clearInterval(ticker);
    await traffic.stop();
  }
}

/** The valid orders' answers other than 202 (429 aside), and how many of them were the scenario's refusal. */
function refusalTally(answers: readonly Answer[], refusals: readonly string[]): { right: number; total: number } {
  const refused = answers.filter((a) => a.status !== 202 && a.status !== 429);
  return { right: refused.filter((a) => refusals.includes(label(a))).length, total: refused.length };
}

/** Polls until nothing of the scenario is open or owed; false when the bound passed first. */
async function settle(ctx: ScenarioContext, above: string): Promise<boolean> {
  const deadline = performance.now() + ctx.s.settleBoundS * 1000;
  while (!ctx.run.stopping && performance.now() < deadline) {
    const left = await backlog(ctx.world.db, above, null).catch(() => null);
    if (left) ctx.phase(`settling: ${left.open} orders open, ${left.owed} notifications owed`);
    if (left && left.open === 0 && left.owed === 0) return true;
    await sleep(POLL_MS); // polling MySQL, bounded by the deadline
  }
  return false;
}

/**
 * From the fault's end: the first 202 to a request sent after it, and the moment everything
 * accepted before it went through (its orders and their notifications). Runs alongside the rest
 * of the scenario; result() resolves with the seconds, or null past the settle bound.
 */
function watchRecovery(ctx: ScenarioContext, above: string, end: number): { result(): Promise<number | null> } {
  const upTo = maxId(ctx.traffic.acceptedIds());
  const deadline = end + (2 * ctx.s.calmSeconds + ctx.s.settleBoundS + ctx.s.retryForS) * 1000;
  const watch = (async () => {
    let intakeBackAt: number | null = null;
    let caughtUpAt: number | null = null;
    let scanned = 0;
    while (!ctx.run.stopping && performance.now() < deadline) {
      const answers = ctx.traffic.answers;
      for (; scanned < answers.length && intakeBackAt === null; scanned++) {
        const a = answers[scanned]!;
        if (a.status === 202 && a.sentAt >= end) intakeBackAt = a.sentAt + a.ms;
      }
      if (caughtUpAt === null) {
        const left = await backlog(ctx.world.db, above, upTo).catch(() => null);
        if (left && left.open === 0 && left.owed === 0) caughtUpAt = performance.now();
      }
      if (intakeBackAt !== null && caughtUpAt !== null) return (Math.max(intakeBackAt, caughtUpAt) - end) / 1000;
      await sleep(POLL_MS); // polling, bounded by the deadline
    }
    return null;
  })();
  return { result: () => watch };
}
