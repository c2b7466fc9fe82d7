/**
 * Drill: two replicas deploy at once. Plain graphile-migrate fails the loser ("Failed to get
 * exclusive lock"); `db:migrate` serialises on its own advisory lock (deploy-lock.ts): the
 * second waits, then finds everything applied and every backfill done. The wait is bounded
 * by MIGRATE_LOCK_WAIT_SECONDS and ends in a clear error with nothing changed.
 */
import { describe, expect, it } from 'vitest'
import { catalogOf } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import {
  checksums,
  committedFiles,
  expectCleanFailure,
  holdTransaction,
  ledger,
  ledgerOutcome,
  loadFixture,
  sessionsOn,
  startDb,
  type Background,
  waitFor,
} from '../helpers/drills.js'
import { graphileMigrate } from '../helpers/project.js'
import { DEPLOY_LOCK_KEY } from '../../scripts/deploy/deploy-lock.js'
import { expectComplete, uninterrupted } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000
/** graphile-migrate's own advisory lock key (pgReal.js, "GRAPHILE MIGRATE" on a phone keypad). */
const GRAPHILE_MIGRATE_LOCK_KEY = '4727445306447283'

const schemas = (url: string) =>
  withClient(url, async (c) =>
    (await c.query(`select nspname from pg_namespace where nspname in ('graphile_migrate', 'migration_hooks') order by 1`)).rows.map(
      (r) => r.nspname,
    ),
  )

describe('two db:migrate at once', () => {
  it('both succeed; every migration is recorded once and every backfill ran once', { timeout: TIMEOUT }, async () => {
    const reference = await uninterrupted(FIXTURE)
    const db = await createTestDatabases('race')
    await loadFixture(db.databaseUrl, FIXTURE)

    // The test holds the deploy lock until both wait for it: neither can finish its schema step
    // before the other has started, however the two processes are scheduled.
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${DEPLOY_LOCK_KEY})`])
    const a = startDb(['migrate'], db.env)
    const b = startDb(['migrate'], db.env)
    // Evidence that they really overlapped: both connected at the same moment.
    let together = 0
    try {
      const waiting = (p: Background) => p.output().includes('Another db:migrate is running; waiting')
      await waitFor(
        async () => {
          if (a.exited() || b.exited()) throw new Error(`a deploy ended before both waited:\n${a.output()}\n${b.output()}`)
          return waiting(a) && waiting(b)
        },
        { what: 'both deploys to wait for the deploy lock', timeoutMs: 300_000 },
      )
      together = (await sessionsOn(db.databaseUrl)).filter((s) => s.application_name === 'db:migrate deploy lock').length
    } finally {
      await holder.release()
    }
    while (!a.exited() || !b.exited()) {
      const waiting = (await sessionsOn(db.databaseUrl)).filter((s) => s.application_name === 'db:migrate deploy lock').length
      together = Math.max(together, waiting)
      await new Promise((r) => setTimeout(r, 50))
    }
    const [ra, rb] = await Promise.all([a.result, b.result])
    expect(ra.exitCode, ra.all).toBe(0)
    expect(rb.exitCode, rb.all).toBe(0)
    expect(together, 'both processes held a deploy-lock session at once').toBe(2)

    await expectComplete(db.databaseUrl)
    // Ran once: the counts are a single run's (a second pass would have reset or added to them).
    expect(ledgerOutcome(await ledger(db.databaseUrl))).toEqual(ledgerOutcome(await ledger(reference.databaseUrl)))
    expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
    // One applied the chain and ran the backfills; the other waited, then had nothing to do.
    const [winner, loser] = /Applied \d+ migration/.test(ra.stdout) ? [ra, rb] : [rb, ra]
    expect(winner.stdout).toMatch(new RegExp(`Applied ${committedFiles().length} migration\\(s\\)`))
    expect(loser.stdout).toMatch(/already up to date/)
    expect(loser.stdout).not.toMatch(/done: changed/)
  })

  it('the second waits for the first and then proceeds', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('race_wait')
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${DEPLOY_LOCK_KEY})`])
    const run = startDb(['migrate'], { ...db.env, MIGRATE_LOCK_WAIT_SECONDS: '300' })
    try {
      await waitFor(async () => run.output().includes('waiting'), { what: 'db:migrate to wait for the deploy lock', process: run })
      // While it waits, it has changed nothing.
      expect(await schemas(db.databaseUrl)).toEqual([])
      expect(run.exited()).toBe(false)
    } finally {
      await holder.release()
    }
    const r = await run.result
    expect(r.exitCode, r.all).toBe(0)
    await expectComplete(db.databaseUrl)
  })

  it('gives up after MIGRATE_LOCK_WAIT_SECONDS with a clear error and nothing changed', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('race_bounded')
    await loadFixture(db.databaseUrl, FIXTURE)
    const before = { catalog: await catalogOf(db.databaseUrl), rows: await checksums(db.databaseUrl) }
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${DEPLOY_LOCK_KEY})`])
    try {
      const started = Date.now()
      const r = await startDb(['migrate'], { ...db.env, MIGRATE_LOCK_WAIT_SECONDS: '3' }).result
      expectCleanFailure(r, /Another db:migrate has held the deploy lock for more than 3s.*MIGRATE_LOCK_WAIT_SECONDS/)
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000)
    } finally {
      await holder.release()
    }
    expect(await schemas(db.databaseUrl)).toEqual([])
    expect(await catalogOf(db.databaseUrl)).toBe(before.catalog)
    expect(await checksums(db.databaseUrl)).toEqual(before.rows)
  })

  it('someone running graphile-migrate directly: plain graphile-migrate fails, db:migrate says what to do', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await createTestDatabases('race_gm')
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${GRAPHILE_MIGRATE_LOCK_KEY})`])
    try {
      const plain = await graphileMigrate(['migrate'], { ...db.env, MIGRATION_HOOKS_DEFERRED: '1' })
      expect(plain.exitCode).not.toBe(0)
      expect(plain.all).toMatch(/Failed to get exclusive lock/)
      const ours = await startDb(['migrate'], db.env).result
      expectCleanFailure(ours, /Another graphile-migrate process holds the migration lock/)
    } finally {
      await holder.release()
    }
    expect(await schemas(db.databaseUrl)).toEqual([])
  })
})
