import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/quota measures 1-second rate windows: npm test runs it alone, after everything else.
    exclude: process.env.CSE_QUOTA_TESTS ? [] : ['test/quota/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Rate-limit tests measure 1-second windows: too many files at once on 2 cores distorts them.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
