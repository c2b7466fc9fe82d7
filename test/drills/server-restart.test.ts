/**
 * Drill: the real thing — the database server is restarted under a running `db:migrate`:
 * 'immediate' is a crash followed by recovery from WAL, 'fast' a clean shutdown that ends
 * every session.
 *
 * Restarting the shared test server would break every test file running in parallel, so
 * this file starts a private embedded server of its own (.data/drill-restart-embedded,
 * created on first use) and restarts that one; it stops it when done. Skipped when the tests
 * use an external server (TEST_ROOT_DATABASE_URL), where the embedded binaries may be absent.
 * The same failures without a restart (pg_terminate_backend) are in server-going-away.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { createTestDatabases } from '../helpers/databases.js'
import { expectCleanFailure, ledger, loadFixture, startDb, waitFor, waitForNoSessions } from '../helpers/drills.js'
import { usePrivateEmbeddedServer } from '../helpers/private-server.js'
import { restartEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { disruptBlockedMigration, expectConsistentPrefix, expectRerunCompletes, uninterrupted } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000
const { enabled, dataRoot: DATA_ROOT } = usePrivateEmbeddedServer('drill-restart-embedded')

describe.skipIf(!enabled)('restarting the server', () => {
  it.each(['immediate', 'fast'] as const)(
    '%s restart during the backfills: clear error; the next run completes with no row lost',
    { timeout: TIMEOUT },
    async (mode) => {
      const reference = await uninterrupted(FIXTURE)
      const db = await createTestDatabases(`restart_hooks_${mode}`)
      await loadFixture(db.databaseUrl, FIXTURE)
      const run = startDb(['migrate'], { ...db.env, HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_DELAY_MS: '150' })
      await waitFor(
        async () => (await ledger(db.databaseUrl)).find((e) => e.name === 'subtask-links' && e.state === 'running' && e.cursor !== null),
        { what: 'subtask-links to be part-way', process: run, timeoutMs: 300_000, intervalMs: 40 },
      )
      restartEmbeddedServer(DATA_ROOT, mode)
      const r = await run.result
      expectCleanFailure(r, /connection to PostgreSQL was lost|shut down or is starting up/)
      await waitForNoSessions(db.databaseUrl)

      await expectRerunCompletes(db, reference)
    },
  )

  it('immediate restart during a migration: it left nothing, and the next run completes', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('restart_mig')
    await loadFixture(db.databaseUrl, FIXTURE)
    const { result: r, blockedIndex } = await disruptBlockedMigration(db, () => restartEmbeddedServer(DATA_ROOT, 'immediate'))
    expectCleanFailure(r, /db:migrate failed\. The connection to PostgreSQL was lost/)
    expect(await expectConsistentPrefix(db.databaseUrl, FIXTURE)).toBe(blockedIndex)

    await expectRerunCompletes(db)
  })
})
