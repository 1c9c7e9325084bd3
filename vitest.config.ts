import { defineConfig } from 'vitest/config';

// Tests that need the machine to themselves: npm test runs them after everything else, one at a time, with
// CSE_ALONE_TESTS=1. test/quota, the source-IP test and the cluster tests that saturate a shared quota count
// 1-second windows at the emulator at 96-100% of a limit: on two cores shared with the rest of the suite, a process
// descheduled for longer than the limiter's guard (20 ms at 100 QPS) stamps or sends arrivals late and bunches them
// into one window (ha-fleet saw 101 once, as the quota test saw 305-324 at a 300/s ceiling). The dashboard-scale test
// polls 100,000 devices under a real Prometheus.
const ALONE = [
  'test/quota/**/*.test.ts',
  'test/apis/aliyun-mqtt-sessions/source-ip.test.ts',
  'test/cluster/ha-fleet.test.ts',
  'test/cluster/redis-outage.test.ts',
  'test/cluster/auto-sharding.test.ts',
  'test/e2e/dashboard-scale.test.ts',
];
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
