/**
 * The suite's tiers, in one place: the quick tier (`npm run test:quick`) leaves the heavy files out,
 * and `npm test` runs them after everything else, two at a time, so the light files can run four at
 * a time without starving a fleet of its CPU (a fleet's lock TTLs and recovery times are real).
 */
export const HEAVY_FILES = [
  'test/processes.test.ts', // every entrypoint started as a real process, stopped with SIGTERM
  'test/worker-resilience.test.ts', // workers killed with SIGKILL, jobs taken over after their lock
  'test/redis-restart.test.ts', // a private Redis crashed and restarted under a worker
  'test/redis-loss.test.ts', // FLUSHALL and a Redis outage under a fleet of real processes
  'test/mysql-away.test.ts', // a fleet's MySQL silent then reset mid-run
  'test/kill-points.test.ts', // the web and the notifier SIGKILLed at their worst moments
  'test/switches.test.ts', // switches flipped under real web, worker, notifier and scheduler processes
  'test/cache-consistency.test.ts', // writer processes SIGSTOPped and SIGKILLed, Redis restarted
  'test/operator-cli.test.ts', // the CLI run as processes against dead dependencies
  'test/scheduler.test.ts', // two scheduler processes firing real cron ticks
  'test/metrics.test.ts', // the fleet's processes scraped after a few orders, each /metrics through promtool
  'test/chaos-quick.test.ts', // npm run chaos -- --quick: the fleet on its own MariaDB and Redis, through five faults
];

/**
 * Heavy files that run last and alone: their assertions name the path each order took (which job
 * put a lost batch back), and beside another fleet, on two cores, a starved worker takes another
 * path (a batch's attempt fails, compensation re-drives it) that is right but not the one asserted.
 */
export const SOLO_FILES = ['test/redis-loss.test.ts'];

/** Light files are mostly waiting on MariaDB, Redis and timers, so more of them than cores run at once. */
export const LIGHT_FILES_AT_ONCE = 4;
export const HEAVY_FILES_AT_ONCE = 2;
