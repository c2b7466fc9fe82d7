import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

// Most of a test's time is spent waiting on PostgreSQL and child processes, so one worker
// more than half again the cores keeps the CPUs busy without thrashing (3 on 2 cores).
const workers = Math.max(2, Math.ceil(availableParallelism() * 1.5))

// Tests that assert how long the proxy waits (test/latency) run in a phase of their own, one
// file at a time, after the rest (`npm run test:latency`): a lock held for 10 ms by the
// migration must not read as a second because the soak drill starved the machine meanwhile.
const latencyPhase = process.env.TEST_PHASE === 'latency'

export default defineConfig({
  test: {
    include: latencyPhase ? ['test/latency/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: latencyPhase ? [] : ['test/latency/**', '**/node_modules/**'],
    // Starts (or reuses) a real PostgreSQL 15 unless TEST_ROOT_DATABASE_URL is given.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Every test file works in databases of its own, so files can run in parallel.
    pool: 'forks',
    maxWorkers: latencyPhase ? 1 : workers,
    minWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // The soak drill (test/drills/soak.test.ts) runs too; SOAK=0 skips it for quick runs.
  },
})
