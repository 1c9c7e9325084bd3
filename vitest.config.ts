import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that need the machine to themselves (test/quota measures 1-second rate windows at 96% of the bound; the
    // dashboard-scale test polls 100,000 devices under a real Prometheus): npm test runs them alone, one at a time,
    // after everything else, with CSE_ALONE_TESTS=1.
    exclude: process.env.CSE_ALONE_TESTS ? ['node_modules/**'] : ['test/quota/**', 'test/e2e/dashboard-scale.test.ts', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Rate-limit tests measure 1-second windows: too many files at once on 2 cores distorts them.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
