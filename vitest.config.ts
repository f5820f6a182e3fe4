import { configDefaults, defineConfig } from 'vitest/config';
import { HEAVY_FILES, HEAVY_FILES_AT_ONCE, LIGHT_FILES_AT_ONCE, SOLO_FILES } from './test/tiers.ts';

const shared = {
  pool: 'forks' as const,
  testTimeout: 30_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // A JSON report beside the console one: .ci/run prints its totals.
    reporters: ['default', 'json'],
    outputFile: { json: '.reports/vitest.json' },
    projects: [
      {
        test: {
          ...shared,
          name: 'light',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...HEAVY_FILES],
          maxWorkers: LIGHT_FILES_AT_ONCE,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'heavy',
          include: HEAVY_FILES.filter((file) => !SOLO_FILES.includes(file)),
          maxWorkers: HEAVY_FILES_AT_ONCE,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...shared,
          name: 'solo',
          include: SOLO_FILES,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
