import { defineConfig } from 'vitest/config';

// Tests that need the machine to themselves (test/quota measures 1-second rate windows at 96% of the bound; the
// dashboard-scale test polls 100,000 devices under a real Prometheus): npm test runs them after everything else, one
// at a time, with CSE_ALONE_TESTS=1.
const ALONE = ['test/quota/**/*.test.ts', 'test/e2e/dashboard-scale.test.ts'];
const ALONE_RUN = Boolean(process.env.CSE_ALONE_TESTS);

export default defineConfig({
  test: {
    include: ALONE_RUN ? ALONE : ['test/**/*.test.ts'],
    exclude: ALONE_RUN ? ['node_modules/**'] : [...ALONE, 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Rate-limit tests measure 1-second windows: too many files at once on 2 cores distorts them.
    maxWorkers: ALONE_RUN ? 1 : 2,
    minWorkers: 1,
  },
});
