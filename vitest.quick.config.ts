import { configDefaults, defineConfig } from 'vitest/config';
import full from './vitest.config.ts';

/**
 * The quick tier (`npm run test:quick`), for the inner loop: every test file but the heavy fault
 * files, which start and kill processes, restart Redis or run long loads. `npm test` runs them all
 * (CI runs `npm test`).
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

export default defineConfig({
  test: {
    ...full.test,
    exclude: [...configDefaults.exclude, ...HEAVY_FILES],
    reporters: ['default'],
    outputFile: {},
  },
});
