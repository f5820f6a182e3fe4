import { configDefaults, defineConfig } from 'vitest/config';
import { HEAVY_FILES, LIGHT_FILES_AT_ONCE } from './test/tiers.ts';

/**
 * The quick tier (`npm run test:quick`), for the inner loop: every test file but the heavy fault
 * files (listed with their reasons in test/tiers.ts). `npm test` runs them all (CI runs `npm test`).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...HEAVY_FILES],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    maxWorkers: LIGHT_FILES_AT_ONCE,
  },
});
