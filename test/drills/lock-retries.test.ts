/**
 * Drill: a migration that needs an exclusive lock (migration 000001 adds the columns a
 * Docker-init database lacks) while another session holds a conflicting lock on api_requests
 * for longer than lock_timeout — a long report, say. Each attempt gives up after lock_timeout
 * (2 s), so the proxy never queues behind it for long; db:migrate retries until the lock is
 * free, and with no retries left it fails with nothing of that migration applied.
 */
import { describe, expect, it } from 'vitest'
import { lockRetryPauseMs, withLockRetries } from '../../scripts/deploy/lock-retries.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { committedFiles, expectCleanFailure, holdTransaction, loadFixture, runDb, startDb } from '../helpers/drills.js'

const applied = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query(`select to_regclass('graphile_migrate.migrations') is not null as ok`)
    if (!rows[0].ok) return 0
    return (await c.query(`select count(*)::int as n from graphile_migrate.migrations`)).rows[0].n as number
  })

describe('withLockRetries', () => {
  it('retries only lock timeouts, at most the given number of times, pausing longer each time', async () => {
    const pauses: number[] = []
    let calls = 0
    const timedOut = { exitCode: 1, output: 'error: canceling statement due to lock timeout' }
    const r = await withLockRetries(async () => (++calls < 3 ? timedOut : { exitCode: 0, output: '' }), {
      retries: 5,
      log: () => {},
      pause: async (ms) => void pauses.push(ms),
    })
    expect(r.exitCode).toBe(0)
    expect(calls).toBe(3)
    expect(pauses).toEqual([lockRetryPauseMs(1), lockRetryPauseMs(2)])
    expect(pauses[1]).toBeGreaterThan(pauses[0])

    calls = 0
    const counted =
      <R>(result: R) =>
      async () => {
        calls++
        return result
      }
    const other = await withLockRetries(counted({ exitCode: 1, output: 'syntax error' }), { retries: 5, log: () => {} })
    expect([other.exitCode, calls]).toEqual([1, 1])

    calls = 0
    const exhausted = await withLockRetries(counted(timedOut), { retries: 2, log: () => {}, pause: async () => {} })
    expect([exhausted.exitCode, calls]).toEqual([1, 3])
  })
})

describe('a migration waiting for a conflicting lock', () => {
  it('db:migrate retries after each lock_timeout and completes once the lock is free', { timeout: 300_000 }, async () => {
    const db = await createTestDatabases('lock_retry')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    const holder = await holdTransaction(db.databaseUrl, ['lock table public.api_requests in access share mode'])
    const run = startDb(['migrate', '--schema-only'], db.env)
    try {
      // Longer than two lock_timeouts: the first attempts give up, and nothing is applied yet.
      await new Promise((r) => setTimeout(r, 5000))
      expect(run.exited()).toBe(false)
      expect(await applied(db.databaseUrl)).toBe(0)
    } finally {
      await holder.release()
    }
    const r = await run.result
    expect(r.exitCode, r.all).toBe(0)
    expect(await applied(db.databaseUrl)).toBe(committedFiles().length)
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
  })

  it('with no retries left it fails, with nothing of that migration applied', { timeout: 300_000 }, async () => {
    const db = await createTestDatabases('lock_no_retry')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    const holder = await holdTransaction(db.databaseUrl, ['lock table public.api_requests in access share mode'])
    try {
      const r = await runDb(['migrate', '--schema-only'], { ...db.env, MIGRATE_LOCK_RETRIES: '0' })
      expectCleanFailure(r, /lock_timeout/)
      expect(await applied(db.databaseUrl)).toBe(0)
      const columns = await withClient(db.databaseUrl, (c) =>
        c.query(
          `select count(*)::int as n from information_schema.columns where table_name = 'api_requests' and column_name = 'api_key_id'`,
        ),
      )
      expect(columns.rows[0].n).toBe(0)
    } finally {
      await holder.release()
    }
  })
})
