import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // A JSON report beside the console one: .ci/run prints its totals.
    reporters: ['default', 'json'],
    outputFile: { json: '.reports/vitest.json' },
  },
});
