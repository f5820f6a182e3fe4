/**
 * How every bench runs: its main within an overall time bound, Ctrl-C (or SIGTERM, SIGHUP) stopping
 * it cleanly, and its clean-up steps (stop the fleet, delete its Redis keys, drop its database, close
 * connections) run however it ends: done, failed, interrupted or out of time. Then every process it
 * started and that is still there is killed, and the bench exits with main's code (1 on a failure
 * or the bound, 130 on a signal).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runningProcesses } from './bench-process.ts';
import { log } from './log.ts';

/** Clean-up steps get this long together before the processes are killed regardless. */
const CLEANUP_BOUND_MS = 30_000;

export interface BenchRun {
  /** Registers a clean-up step; they run last-registered first, once. */
  onCleanup(what: string, step: () => Promise<unknown>): void;
  /** Seconds left of the overall bound. */
  secondsLeft(): number;
  /** Set once a signal or the bound asked the bench to stop: loops that wait check it. */
  readonly stopping: boolean;
}

export function runBench(name: string, boundS: number, main: (run: BenchRun) => Promise<number>): void {
  const cleanups: { what: string; step: () => Promise<unknown> }[] = [];
  const deadline = Date.now() + boundS * 1000;
  let stopping = false;
  let exiting = false;

  const cleanUp = async () => {
    const steps = cleanups.splice(0).reverse();
    const all = (async () => {
      for (const { what, step } of steps) {
        try {
          await step();
        } catch (error) {
          log(`bench: clean-up "${what}" failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    await Promise.race([all, sleep(CLEANUP_BOUND_MS)]);
  };
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await cleanUp();
    for (const proc of runningProcesses()) proc.lines.signal('SIGKILL');
    await Promise.race([Promise.all(runningProcesses().map((p) => p.exited)), sleep(2000)]);
    process.exit(code);
  };

  process.on('exit', () => {
    for (const proc of runningProcesses()) proc.lines.signal('SIGKILL'); // last resort
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stopping) {
        log(`\nbench: ${signal} again: killing everything now`);
        for (const proc of runningProcesses()) proc.lines.signal('SIGKILL');
        process.exit(130);
      }
      stopping = true;
      log(`\nbench: ${signal}: cleaning up (a second ${signal} kills everything at once)`);
      void exit(130);
    });
  }
  const watchdog = setTimeout(() => {
    stopping = true;
    log(`bench: ${name} did not finish within its bound (${boundS} s): cleaning up and giving up`);
    void exit(1);
  }, boundS * 1000);
  watchdog.unref();

  const run: BenchRun = {
    onCleanup: (what, step) => void cleanups.push({ what, step }),
    secondsLeft: () => Math.max(0, (deadline - Date.now()) / 1000),
    get stopping() {
      return stopping;
    },
  };
  main(run).then(
    (code) => exit(code),
    (error: unknown) => {
      log(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return exit(1);
    },
  );
}
