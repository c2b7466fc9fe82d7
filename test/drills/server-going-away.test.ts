/**
 * Drill: the database server goes away under a running `db:migrate`. From the client's point
 * of view, a restart and an administrator's pg_terminate_backend look the same: the session
 * ends mid-statement or between statements. (A real restart of the shared test server would
 * break the test files running in parallel; server-restart.test.ts does that, run alone.)
 *
 * Expected: a clear error (no stack trace) and a non-zero exit; the next run completes and
 * ends identical to an uninterrupted run — no row lost, no batch applied twice.
 */
import { describe, expect, it } from 'vitest'
import { createTestDatabases } from '../helpers/databases.js'
import {
  backfillPartWay,
  closeWriteGate,
  expectCleanFailure,
  GATE_PATIENT,
  ledger,
  loadFixture,
  startDb,
  terminateSessions,
  waitForNoSessions,
} from '../helpers/drills.js'
import { disruptBlockedMigration, expectConsistentPrefix, expectRerunCompletes, uninterrupted } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000
const LOST = /connection to PostgreSQL was lost|shut down or is starting up, or an administrator ended the session/

describe('the server goes away', () => {
  it.each([
    { name: 'task-invocations', steps: undefined },
    // Its steps only read api_requests; the row pass writes its links, where the gate is.
    { name: 'subtask-links', steps: ['walk'] },
  ])('during the $name backfill: clear error, and the next run completes with no row lost', { timeout: TIMEOUT }, async (point) => {
    const reference = await uninterrupted(FIXTURE)
    const db = await createTestDatabases('gone_hooks')
    await loadFixture(db.databaseUrl, FIXTURE)
    // The backfill's next write after a batch it committed waits at the gate (for as long as
    // the gate is closed: GATE_PATIENT), so the session ends while the backfill is part-way.
    // One row per batch: the step takes several batches.
    const gate = await closeWriteGate(db.databaseUrl, { when: backfillPartWay(point.name, point.steps) })
    const run = startDb(['migrate'], { ...db.env, HOOKS_BATCH_SIZE: '1', ...GATE_PATIENT })
    let r: Awaited<typeof run.result>
    try {
      await gate.waitUntilBlocked(run)
      expect(await terminateSessions(db.databaseUrl, `application_name = 'migration hooks'`)).toBe(1)
      r = await run.result
    } finally {
      if (!run.exited()) await run.kill('SIGKILL')
      await gate.remove()
    }
    expectCleanFailure(r, LOST)
    expect(r.stderr).toMatch(new RegExp(`backfill "${point.name}" failed`))
    await waitForNoSessions(db.databaseUrl)
    // The failure could not be written with the session gone: the ledger still says running
    // (which the next run resumes like any interruption), and the message says so.
    expect((await ledger(db.databaseUrl)).find((e) => e.name === point.name)?.state).toBe('running')
    expect(r.stderr).toMatch(/still shows this backfill as running/)

    await expectRerunCompletes(db, reference)
  })

  it('during a migration: clear error, the migration left nothing, and the next run completes', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('gone_mig')
    await loadFixture(db.databaseUrl, FIXTURE)
    const { result: r, blockedIndex } = await disruptBlockedMigration(db, async (holderPid) => {
      // Every session of the deploy, as a restart would end them.
      expect(await terminateSessions(db.databaseUrl, `pid <> ${holderPid}`)).toBeGreaterThanOrEqual(2)
    })
    expectCleanFailure(r, /db:migrate failed\. The connection to PostgreSQL was lost/)
    await waitForNoSessions(db.databaseUrl)
    expect(await expectConsistentPrefix(db.databaseUrl, FIXTURE)).toBe(blockedIndex)

    await expectRerunCompletes(db)
  })
})
