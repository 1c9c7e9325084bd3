import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Rate-limit tests measure 1-second windows: too many files at once on 2 cores distorts them.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
