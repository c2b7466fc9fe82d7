import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts (or reuses) a real PostgreSQL 15 unless TEST_ROOT_DATABASE_URL is given.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Every test file works in databases of its own, so files can run in parallel; the
    // machine has 2 cores and most time is spent in PostgreSQL and child processes.
    pool: 'forks',
    maxWorkers: 3,
    minWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // The soak drill (test/drills/soak.test.ts) runs too; SOAK=0 skips it for quick runs.
  },
})
