/**
 * `npm run chaos`: the architecture's promises shown, not only tested. It starts the Procfile fleet
 * (two workers) on a MariaDB and a Redis of its own (world.ts), sends valid orders at a steady rate,
 * and runs the scenarios one after another (scenarios/*.ts): a worker SIGKILLed every few seconds;
 * Redis flushed, then restarted; MariaDB crashed and restarted; the notification provider slow,
 * failing, down and back; duplicates and bad requests at rate. Each ends with a check of every
 * accepted order (checks.ts) and prints its row: accepted, through the pipeline, lost, duplicate
 * riders or notifications, right codes, time to recover, p99 during the fault.
 *
 * Bounded in count and time, traffic only to 127.0.0.1; however it ends (done, a failed check,
 * Ctrl-C, its bound) every process, the data directory and Redis are removed (bench/lib/run-bench.ts).
 * Exit code 0 when every check passed, 1 with the reasons otherwise. `--quick` is the short run
 * `npm test` runs; the full run shows a progress bar and writes bench/CHAOS.md.
 */
import { fmt, log } from '../lib/log.ts';
import { runBench } from '../lib/run-bench.ts';
import { sectionHeading } from '../lib/results.ts';
import { Progress } from './progress.ts';
import { failures, printReport, writeChaosMd } from './report.ts';
import { runScenario, type Scenario, type ScenarioResult } from './scenario.ts';
import { badRequests } from './scenarios/bad-requests.ts';
import { mariadbRestart } from './scenarios/mariadb-restart.ts';
import { providerOutage } from './scenarios/provider-outage.ts';
import { redisLoss } from './scenarios/redis-loss.ts';
import { workerKill } from './scenarios/worker-kill.ts';
import { chaos as s, settings, type ScenarioKey } from './settings.ts';
import { setUpWorld } from './world.ts';

const SCENARIOS: Record<ScenarioKey, () => Scenario> = {
  kill: workerKill,
  redis: redisLoss,
  mariadb: mariadbRestart,
  provider: providerOutage,
  requests: badRequests,
};

/** A scenario's planned time (its load and fault), and its worst case (every bound reached). */
const plannedS = 2 * s.calmSeconds + s.faultSeconds + 3;
const worstS = 2 * s.calmSeconds + 2 * s.faultSeconds + s.retryForS + s.settleBoundS + 60;
const BOUND_S = 300 + s.scenarios.length * worstS;

runBench('chaos', BOUND_S, async (run) => {
  log(
    `chaos: ${s.quick ? 'the quick run' : 'the full run'}: ${s.scenarios.join(', ')}; ${fmt(s.rate)} orders/s, faults of ${s.faultSeconds} s, ` +
      `${s.calmSeconds} s of steady load around each; bounded at ${fmt(BOUND_S)} s` +
      (settings.changed.length ? `; changed: ${settings.changed.join(' ')}` : ''),
  );
  const world = await setUpWorld(s, run);
  const progress = new Progress({ bar: !s.quick, plannedS: s.scenarios.length * (plannedS + 5) });
  run.onCleanup('stop the progress bar', async () => progress.stop());
  const results: ScenarioResult[] = [];
  for (const key of s.scenarios) {
    if (run.stopping) break;
    const result = await runScenario(SCENARIOS[key](), world, s, run, progress);
    if (run.stopping) break; // interrupted: its checks saw a world being taken down
    results.push(result);
    progress.log(`  ${result.passed ? 'PASS' : 'FAIL'} ${key}: ${fmt(result.accepted)} accepted, ${fmt(result.lost)} lost, ${fmt(result.seconds, 1)} s`);
    if (world.fleet.failure) {
      progress.log(`chaos: a fleet process died on its own; the other scenarios would show nothing: stopping (${world.fleet.failure})`);
      break;
    }
  }
  progress.stop();
  if (run.stopping) return 130;
  await world.fleet.stop();

  printReport(results, true);
  if (!s.quick) {
    writeChaosMd(
      {
        heading: sectionHeading('Chaos (`npm run chaos`)', settings.changed).replace(/^<!-- full run -->\n/, ''),
        settingsLine: `${fmt(s.rate)} valid orders/s; faults of ${s.faultSeconds} s with ${s.calmSeconds} s of steady load before and after; ${s.zones} zones, ${world.riders.count} riders of capacity ${world.riders.capacity}; a request unanswered after ${fmt(s.requestBoundMs)} ms is a hang; refused orders retried with their key for ${s.retryForS} s.`,
        fleetSettings: world.fleetSettings,
      },
      results,
    );
  }
  const failed = failures(results);
  const missing = s.scenarios.length - results.length;
  if (missing > 0) failed.push(`${missing} scenarios did not run`);
  if (failed.length) {
    log(`\nCHAOS FAILED (${failed.length}):`);
    for (const reason of failed) log(`  - ${reason}`);
    return 1;
  }
  log(`\nchaos: every check passed (${results.length} scenarios)`);
  return 0;
});
