/**
 * Drill: adopting a Docker-init database while the proxy writes. The database lacks most of
 * the chain's indexes, among them GIN indexes over response bodies with many JSON entries, so
 * a build that blocked writes would stall the proxy for seconds here (hours in production).
 * A second connection inserts and then updates a row every 20 ms during the whole
 * `db:migrate`; no write may wait more than a second, and none may fail.
 */
import { describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { openClient } from '../../lib/connection.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { loadFixture, runDb, startDb } from '../helpers/drills.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'

const TIMEOUT = 900_000
const ROWS = 20_000
const ENTRIES = 40

/** Proxy-like rows: a system prompt, and a response whose content has many entries. */
async function fill(url: string): Promise<void> {
  await withClient(url, (c) =>
    c.query(
      `insert into api_requests (request_id, train_id, timestamp, method, path, headers, body, response_body, model, request_type)
       select gen_random_uuid(), 'train-' || (g % 7), now() - make_interval(secs => g), 'POST', '/v1/messages', '{}'::jsonb,
              jsonb_build_object('system', 'You are helper number ' || (g % 13), 'messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'question ' || g))),
              jsonb_build_object('id', 'msg_' || g, 'role', 'assistant', 'content',
                (select jsonb_agg(jsonb_build_object('type', 'text', 'text', 'part ' || e || ' of answer ' || g, 'index', e)) from generate_series(1, $2) e)),
              'claude-' || (g % 3), 'inference'
         from generate_series(1, $1) g`,
      [ROWS, ENTRIES],
    ),
  )
  await withClient(url, (c) => c.query('analyze api_requests'))
}

interface WriterReport {
  writes: number
  failures: string[]
  /** Longest statement, wall clock: includes CPU starvation on a loaded machine. */
  maxMs: number
  /** Longest time the server saw one of its statements waiting for a lock. */
  maxLockWaitMs: number
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
    // The server's view, every 20 ms: is the writer's statement waiting for a lock, since when?
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid
    const watcher = await openClient(url, { applicationName: 'drill lock-wait sampler' })
    const sampling = (async () => {
      while (running) {
        const { rows } = await watcher.query<{ ms: number | null }>(
          `select extract(epoch from clock_timestamp() - state_change) * 1000 as ms
             from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`,
          [pid],
        )
        if (rows[0]?.ms) report.maxLockWaitMs = Math.max(report.maxLockWaitMs, Number(rows[0].ms))
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
    await fill(db.databaseUrl)
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
    expect(migrate?.all).toMatch(/Online schema step: building idx_api_requests_response_body_task concurrently/)
    expect(report.writes).toBeGreaterThan(50)
    expect(report.failures).toEqual([])
    // Waiting is what the migration can cause; the wall-clock maximum also counts CPU
    // starvation when the whole suite runs at once, so it is reported, not asserted.
    expect(
      report.maxLockWaitMs,
      `longest lock wait ${report.maxLockWaitMs.toFixed(0)} ms, longest write ${report.maxMs.toFixed(0)} ms`,
    ).toBeLessThan(1000)
    // And the database converged: the fresh build's schema, nothing left queued.
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
    const queued = await withClient(db.databaseUrl, (c) => c.query('select count(*)::int as n from migration_hooks.online_index_work'))
    expect(queued.rows[0].n).toBe(0)
    const status = await runDb(['status'], db.env)
    expect(status.exitCode, status.all).toBe(0)
  })
})

describe('a role with statement_timeout = 1s', () => {
  it('adopts the same database: migrations, index builds, refresh and ANALYZE set their own timeouts', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('role_timeout')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    await fill(db.databaseUrl)
    const role = `drill_timeout_${Date.now()}`
    await withClient(db.rootUrl, async (c) => {
      await c.query(`create role ${role} superuser login password 'timeout-drill'`)
      await c.query(`alter role ${role} set statement_timeout = '1s'`)
    })
    try {
      const as = (url: string) => {
        const u = new URL(url)
        u.username = role
        u.password = 'timeout-drill'
        return u.toString()
      }
      // The role's setting is really in force (a GIN build of this table takes longer).
      const probe = await withClient(as(db.databaseUrl), (c) => c.query(`show statement_timeout`))
      expect(probe.rows[0].statement_timeout).toBe('1s')
      const env = { DATABASE_URL: as(db.databaseUrl), SHADOW_DATABASE_URL: as(db.shadowUrl), ROOT_DATABASE_URL: as(db.rootUrl) }
      const r = await runDb(['migrate'], env)
      expect(r.exitCode, r.all).toBe(0)
      expect(r.all).not.toMatch(/statement timeout/)
      expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
    } finally {
      await withClient(db.rootUrl, async (c) => {
        await c.query(`reassign owned by ${role} to current_user`).catch(() => {})
        await c.query(`drop owned by ${role}`).catch(() => {})
      })
    }
  })
})
