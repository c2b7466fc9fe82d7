import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

/**
 * `npm test` runs the suite in phases, one after the other (TEST_PHASE):
 *
 *  - main (unset): every file but the two below, several at a time;
 *  - soak: test/soak, alone: its trials already keep both cores busy (SOAK_CONCURRENCY), and
 *    beside other files it starved them (vitest's own worker RPC timed out);
 *  - latency: test/latency, one file at a time: they assert how long the proxy waits, and a
 *    lock held for 10 ms by a migration must not read as a second on a saturated machine.
 *
 * Workers in the main phase: most of a test's time is spent waiting on PostgreSQL, child
 * processes and held locks, so more files than cores keep the CPUs busy. Measured on 2 cores
 * (README, "Tests"): one per core plus one. TEST_WORKERS overrides it.
 */
const PHASES = { soak: 'test/soak/**', latency: 'test/latency/**' } as const
const phase = process.env.TEST_PHASE as keyof typeof PHASES | undefined
if (phase && !(phase in PHASES)) throw new Error(`TEST_PHASE must be one of ${Object.keys(PHASES).join(', ')} (got "${phase}")`)

const mainWorkers = Number(process.env.TEST_WORKERS) || availableParallelism() + 1

export default defineConfig({
  test: {
    include: phase ? [`${PHASES[phase]}/*.test.ts`] : ['test/**/*.test.ts'],
    exclude: phase ? [] : [...Object.values(PHASES), '**/node_modules/**'],
    // Starts (or reuses) a real PostgreSQL 15 unless TEST_ROOT_DATABASE_URL is given.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Every test file works in databases of its own, so files can run in parallel.
    pool: 'forks',
    maxWorkers: phase ? 1 : mainWorkers,
    minWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
})
