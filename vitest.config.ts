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
 * Workers in the main phase: one per core. Measured on 2 cores, same commit, fresh clone
 * (README, "Tests"): 2 workers 454 s, 3 workers 497 s, 4 workers 465 s — the suite is bound by
 * CPU (PostgreSQL and the CLI processes the tests start), so more workers only add
 * contention, and with it the risk of starving vitest's own worker RPC. TEST_WORKERS overrides it.
 */
const PHASES = { soak: 'test/soak/**', latency: 'test/latency/**' } as const
const phase = process.env.TEST_PHASE as keyof typeof PHASES | undefined
if (phase && !(phase in PHASES)) throw new Error(`TEST_PHASE must be one of ${Object.keys(PHASES).join(', ')} (got "${phase}")`)

/**
 * The lines phase (`npm run test:lines`: TEST_PG_MAJOR=16|17|18) runs what depends on the
 * server's line: the chain and the adoptions, including the upgrade from 15 by dump/restore.
 * Left out there: the tests that pg_dump the test server itself (Debian's client is 15's, and
 * pg_dump refuses a newer server; the upgrade test dumps its own 15 server), the static lint,
 * the trace's own tests (the committed chain's trace runs on every line), and what does not
 * depend on the line: the development loop (watch, commit, uncommit and status run against
 * the embedded 15 server; the chain they build is checked on every line by
 * fresh-and-idempotent) and db:verify (files against graphile-migrate's records). Those two
 * cost about 85 s of test time per line.
 */
const LINE_RUN = Boolean(process.env.TEST_PG_MAJOR)
const LINE_TESTS = ['test/chain/**/*.test.ts', 'test/adoption/**/*.test.ts']
const NOT_ON_LINES = [
  'test/adoption/dump-restore.test.ts',
  'test/adoption/restore-round-trip.test.ts',
  'test/chain/squawk-lint.test.ts',
  // The trace's own cases and CLI (about 30 s a line); the chain's trace (trace-chain) does run on every line.
  'test/chain/trace.test.ts',
  'test/chain/integrity-and-daily-loop.test.ts',
  'test/adoption/verify.test.ts',
]

const mainWorkers = Number(process.env.TEST_WORKERS) || availableParallelism()

export default defineConfig({
  test: {
    include: phase ? [`${PHASES[phase]}/*.test.ts`] : LINE_RUN ? LINE_TESTS : ['test/**/*.test.ts'],
    exclude: [...(phase ? [] : Object.values(PHASES)), ...(LINE_RUN ? NOT_ON_LINES : []), '**/node_modules/**'],
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
