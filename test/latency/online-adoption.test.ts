/**
 * Drill: adopting a Docker-init database while the proxy writes. The database lacks five of
 * the chain's indexes, and here also its GIN index over response bodies with many JSON
 * entries (as a database whose legacy 009 never ran), so a build that blocked writes would
 * stall the proxy for seconds here (hours in production).
 * A second connection inserts and then updates a row every 20 ms during the whole
 * `db:migrate`; no write may wait more than a second, and none may fail.
 */
import { describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { openClient } from '../../lib/connection.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { fillProxyLikeRows, loadFixture, runDb, startDb } from '../helpers/drills.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'

const TIMEOUT = 900_000

interface WriterReport {
  writes: number
  failures: string[]
  /** Longest statement, wall clock: includes CPU starvation on a loaded machine. */
  maxMs: number
  /** Longest time the server saw one of its statements waiting for a lock. */
  maxLockWaitMs: number
  /** What the server said held the lock at the longest wait. */
  blocker?: string
}

/** Insert a row and update it, every 20 ms, until stopped; each statement timed on its own. */
function startWriter(url: string): { stop(): Promise<WriterReport> } {
  const report: WriterReport = { writes: 0, failures: [], maxMs: 0, maxLockWaitMs: 0 }
  let running = true
  const done = (async () => {
    const client = await openClient(url, { applicationName: 'drill proxy writer' })
    const timed = async (sql: string, params: unknown[]) => {
      const started = performance.now()
      try {
        await client.query(sql, params)
      } catch (error) {
        report.failures.push((error as Error).message)
      }
      report.writes++
      report.maxMs = Math.max(report.maxMs, performance.now() - started)
    }
    // The server's view, every 20 ms: is the writer waiting for a lock, since when, and behind
    // which statement? pg_locks.waitstart is when the wait itself began (CPU starvation before
    // it does not count); the blocker is kept for the failure message.
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid
    const watcher = await openClient(url, { applicationName: 'drill lock-wait sampler' })
    const sampling = (async () => {
      while (running) {
        const { rows } = await watcher.query<{ ms: number | null; blocker: string | null }>(
          `select extract(epoch from clock_timestamp() - l.waitstart) * 1000 as ms,
                  (select string_agg(format('%s [%s, in transaction %s s]: %s', b.application_name, b.state,
                                            round(extract(epoch from clock_timestamp() - b.xact_start)::numeric, 2), left(b.query, 300)), ' | ')
                     from pg_stat_activity b where b.pid = any (pg_blocking_pids($1))) as blocker
             from pg_locks l where l.pid = $1 and not l.granted and l.waitstart is not null`,
          [pid],
        )
        const ms = Number(rows[0]?.ms ?? 0)
        if (ms > report.maxLockWaitMs) {
          report.maxLockWaitMs = ms
          report.blocker = rows[0]?.blocker ?? 'unknown'
        }
        await new Promise((r) => setTimeout(r, 20))
      }
      await watcher.end().catch(() => {})
    })()
    try {
      while (running) {
        const id = randomUUID()
        await timed(
          `insert into api_requests (request_id, train_id, timestamp, method, path, headers, body)
           values ($1, 'train-live', now(), 'POST', '/v1/messages', '{}'::jsonb, '{"system": "live"}'::jsonb)`,
          [id],
        )
        await timed(`update api_requests set response_status = 200, response_body = '{"content": []}'::jsonb where request_id = $1`, [id])
        await new Promise((r) => setTimeout(r, 20))
      }
    } finally {
      await sampling
      await client.end().catch(() => {})
    }
  })()
  return {
    async stop() {
      running = false
      await done
      return report
    },
  }
}

describe('adopting a Docker-init database online', () => {
  it('never makes the proxy wait more than a second, and no write fails', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('online')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    await withClient(db.databaseUrl, (c) => c.query('drop index public.idx_api_requests_response_body_gin'))
    await fillProxyLikeRows(db.databaseUrl, 20_000, 40)
    const writer = startWriter(db.databaseUrl)
    let migrate: Awaited<ReturnType<typeof runDb>> | undefined
    let report: WriterReport
    try {
      // Let the writer run alone a moment, then adopt: schema step and backfills.
      await new Promise((r) => setTimeout(r, 500))
      migrate = await startDb(['migrate'], db.env).result
    } finally {
      report = await writer.stop()
    }
    expect(migrate?.exitCode, migrate?.all).toBe(0)
    expect(migrate?.all).toMatch(/Online schema step: building idx_api_requests_response_body_gin concurrently/)
    expect(report.writes).toBeGreaterThan(50)
    expect(report.failures).toEqual([])
    // Waiting is what the migration can cause; the wall-clock maximum also counts CPU
    // starvation when the whole suite runs at once, so it is reported, not asserted.
    expect(
      report.maxLockWaitMs,
      `longest lock wait ${report.maxLockWaitMs.toFixed(0)} ms behind ${report.blocker}; longest write ${report.maxMs.toFixed(0)} ms`,
    ).toBeLessThan(1000)
    // And the database converged: the fresh build's schema, nothing left queued.
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
    const queued = await withClient(db.databaseUrl, (c) => c.query('select count(*)::int as n from migration_hooks.online_index_work'))
    expect(queued.rows[0].n).toBe(0)
    const status = await runDb(['status'], db.env)
    expect(status.exitCode, status.all).toBe(0)
  })
})
