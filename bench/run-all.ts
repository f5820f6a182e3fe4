/**
 * `npm run bench`: every bench in one go, one after the other (each its own process, with its own
 * bound and clean-up), their output streamed with a header per bench, then a summary. Each bench
 * writes its JSON and its section of bench/RESULTS.md as it finishes, and the pipeline its charts.
 * --check runs each with short settings (a check that everything works, recorded as a check run,
 * not a measurement); --benches picks some.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fmt, log, printTable } from './lib/log.ts';
import { nodeArgsFor, ROOT } from './lib/process/line-process.ts';
import { choices, onOff, parseSettings } from './lib/settings.ts';

const BENCHES = ['intake', 'pipeline', 'reads', 'recovery', 'logs'] as const;
/** Short settings per bench for --check: minutes in all, every phase still runs. */
const CHECK_ARGS: Record<(typeof BENCHES)[number], string[]> = {
  intake: ['--seconds', '3', '--warmup', '1'],
  pipeline: ['--steps', '100,300,600', '--step-seconds', '8', '--warmup-seconds', '4', '--memory-orders', '0', '--read-orders', '2000', '--read-seconds', '8', '--drain-bound', '90'],
  reads: ['--orders', '5000', '--seconds', '2', '--rounds', '1', '--warmup', '1', '--slice-warmup', '1', '--wrk-seconds', '2', '--hot-orders', '200', '--stampede', '200'],
  logs: ['--orders', '500', '--rate', '100'],
  recovery: ['--orders', '2000', '--baseline-orders', '200', '--flush-orders', '300', '--calibrate-orders', '200', '--calibrate-rate', '100'],
};

const settings = parseSettings('', 'Every bench in turn; RESULTS.md and bench/results/ rewritten as each finishes.', {
  benches: choices('--benches', 'BENCH_BENCHES', BENCHES, 'benches to run, in this order'),
  check: onOff('--check', 'BENCH_CHECK', false, 'short settings for each bench: a check that they work, not a measurement'),
});
const { benches, check } = settings.values;

let child: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child?.kill(signal)); // the bench cleans up, then we go on to the summary

const outcomes: string[][] = [];
const t0 = performance.now();
for (const [i, bench] of benches.entries()) {
  const args = nodeArgsFor(`bench/${bench}/main.ts`, check ? CHECK_ARGS[bench] : []);
  log(`\n######## [${i + 1}/${benches.length}] bench:${bench}${check ? ` (check: ${CHECK_ARGS[bench].join(' ')})` : ''}, ${fmt((performance.now() - t0) / 1000)} s into the run`);
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
    child.once('exit', (c) => resolve(c));
  });
  outcomes.push([bench, code === 0 ? 'ok' : `exit ${code}`, `${fmt((performance.now() - started) / 1000)} s`]);
  log(`######## bench:${bench} ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${fmt((performance.now() - started) / 1000)} s`);
}
log('\n== npm run bench: summary (figures and PASS/FAIL: bench/RESULTS.md)');
printTable(['bench', 'outcome', 'time'], outcomes);
process.exit(outcomes.every((o) => o[1] === 'ok') ? 0 : 1);
