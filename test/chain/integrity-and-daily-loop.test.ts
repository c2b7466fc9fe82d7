/**
 * The chain protects itself (a committed file changed by one byte is refused), `status`
 * reports through its exit code, and the daily watch → commit → uncommit loop works end to end
 * through the real CLI.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { cleanEnv, graphileMigrate, projectCopy, PROJECT_ROOT } from '../helpers/project.js'
import { chainProblems, readCommittedChain } from '../../scripts/verify/chain.js'
import { computeSystemHash } from '../../hooks/rules/system-prompt-hash.js'
import { nextMigrationNumber, startDb, waitFor } from '../helpers/drills.js'
import { firstRequest, insertRows, req } from '../hooks/support/fixtures.js'

/** The number the daily-loop test's commit gets (the chain's length + 1). */
const NEW = nextMigrationNumber()

const BLANK = readFileSync(join(PROJECT_ROOT, 'migrations', 'current.sql'), 'utf8')

describe('integrity', () => {
  it('migrate refuses a committed file changed by one byte, and applies nothing from it', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('tamper')
    const file = join(dir, 'migrations', 'committed', readdirSync(join(dir, 'migrations', 'committed')).sort()[4]!)
    const text = readFileSync(file, 'utf8')
    // One byte: an index name gains a letter.
    writeFileSync(file, text.replace('idx_requests_conversation_timestamp_id', 'idx_requests_conversation_timestamp_ix'))
    const r = await graphileMigrate(['migrate'], db.env, dir)
    expect(r.exitCode).not.toBe(0)
    expect(r.all).toMatch(/Hash for 000005-legacy-004-optimize-conversation-window-functions\.sql does not match/)
    const applied = await withClient(db.databaseUrl, (c) => c.query('select count(*)::int as n from graphile_migrate.migrations'))
    expect(applied.rows[0].n).toBe(4)
    const idx = await withClient(db.databaseUrl, (c) => c.query(`select to_regclass('idx_requests_conversation_timestamp_ix') as i`))
    expect(idx.rows[0].i).toBeNull()
  })

  it('status exits 1 with pending migrations, 0 when up to date, 2 with a non-empty current.sql', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('status')
    expect((await graphileMigrate(['status'], db.env, dir)).exitCode).toBe(1)
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)
    expect((await graphileMigrate(['status'], db.env, dir)).exitCode).toBe(0)
    writeFileSync(join(dir, 'migrations', 'current.sql'), 'create table wip (id int);\n')
    expect((await graphileMigrate(['status'], db.env, dir)).exitCode).toBe(2)
  })
})

describe('the daily loop', () => {
  it('watch applies an edit of current.sql; commit writes a valid chain link; uncommit brings it back', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('loop')
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)

    const watch = execa('graphile-migrate', ['watch'], {
      cwd: dir,
      env: cleanEnv(db.env),
      extendEnv: false,
      preferLocal: true,
      localDir: PROJECT_ROOT,
      reject: false,
      all: true,
    })
    const widgetsExists = () =>
      withClient(db.databaseUrl, (c) => c.query(`select to_regclass('public.widgets') is not null as ok`)).then(
        (r) => r.rows[0].ok as boolean,
      )
    try {
      // Give watch a moment to start its file watcher, then save an edit.
      await new Promise((r) => setTimeout(r, 2500))
      const sql = '-- widgets for the loop test\ncreate table if not exists widgets (id int primary key, label text);\n'
      writeFileSync(join(dir, 'migrations', 'current.sql'), sql)
      const deadline = Date.now() + 60_000
      while (!(await widgetsExists()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300))
      expect(await widgetsExists()).toBe(true)
    } finally {
      watch.kill('SIGINT')
      await watch
    }

    const commit = await graphileMigrate(['commit', '--message', 'add widgets'], db.env, dir)
    expect(commit.exitCode, commit.all).toBe(0)
    const committedDir = join(dir, 'migrations', 'committed')
    expect(readdirSync(committedDir)).toContain(`${NEW}-add-widgets.sql`)
    const chain = readCommittedChain(join(dir, 'migrations'))
    expect(chain).toHaveLength(Number(NEW))
    expect(chainProblems(chain)).toEqual([])
    expect(chain.at(-1)!.body).toMatch(/create table if not exists widgets/)
    expect(readFileSync(join(dir, 'migrations', 'current.sql'), 'utf8')).toBe(BLANK)
    // The shadow rebuild regenerated the scratch copy's schema snapshot.
    expect(readFileSync(join(dir, 'schema', 'schema.sql'), 'utf8')).toMatch(/CREATE TABLE public\.widgets/)
    const recorded = await withClient(db.databaseUrl, (c) =>
      c.query(`select hash from graphile_migrate.migrations where filename = $1`, [`${NEW}.sql`]),
    )
    expect(recorded.rows[0]?.hash).toBe(chain.at(-1)!.recordedHash)

    const uncommit = await graphileMigrate(['uncommit'], db.env, dir)
    expect(uncommit.exitCode, uncommit.all).toBe(0)
    expect(readdirSync(committedDir)).not.toContain(`${NEW}-add-widgets.sql`)
    expect(readFileSync(join(dir, 'migrations', 'current.sql'), 'utf8')).toMatch(/create table if not exists widgets/)
    const after = await withClient(db.databaseUrl, (c) =>
      c.query(`select count(*)::int as n from graphile_migrate.migrations where filename = $1`, [`${NEW}.sql`]),
    )
    expect(after.rows[0].n).toBe(0)
  })
})

describe('npm run db:watch (in-process watch loop)', () => {
  it('applies each save of current.sql, and the hooks run after it in the same process', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('watchloop')
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)
    // A legacy-shaped row whose system_hash the hooks fill; the first run below finds the
    // system-hash backfill already done (it ran on the empty table), so the row stays NULL
    // until current.sql forgets that run.
    const system = 'You are a helpful assistant.'
    await withClient(db.databaseUrl, (c) =>
      insertRows(c, [{ id: req(1), ts: '2025-01-01T10:00:00Z', body: firstRequest('hi', system), systemHash: null }]),
    )
    const watch = startDb(['watch'], db.env, dir)
    try {
      await waitFor(async () => watch.output().includes('Watching'), { what: 'db:watch to start', process: watch })
      const systemHash = async () =>
        (await withClient(db.databaseUrl, (c) => c.query(`select system_hash from api_requests where request_id = $1`, [req(1)]))).rows[0]
          .system_hash as string | null
      expect(await systemHash()).toBeNull()
      writeFileSync(
        join(dir, 'migrations', 'current.sql'),
        `create table if not exists gadgets (id int primary key);\ndelete from migration_hooks.backfills where name = 'system-hash';\n`,
      )
      await waitFor(systemHash, { what: 'the hooks to fill system_hash after the save', process: watch, timeoutMs: 60_000 })
      expect(await systemHash()).toBe(computeSystemHash(system))
      const gadgets = await withClient(db.databaseUrl, (c) => c.query(`select to_regclass('public.gadgets') is not null as ok`))
      expect(gadgets.rows[0].ok).toBe(true)
      // A second save is applied too (the loop keeps watching after running the hooks).
      writeFileSync(join(dir, 'migrations', 'current.sql'), 'create table if not exists gizmos (id int primary key);\n')
      await waitFor(
        async () => (await withClient(db.databaseUrl, (c) => c.query(`select to_regclass('public.gizmos') is not null as ok`))).rows[0].ok,
        { what: 'the second save to be applied', process: watch, timeoutMs: 60_000 },
      )
      // A save that changes what current.sql does to a hot table gets its one-line trace.
      writeFileSync(join(dir, 'migrations', 'current.sql'), `update public.api_requests set model = 'watched';\n`)
      await waitFor(async () => /trace: api_requests ROW EXCLUSIVE/.test(watch.output()), {
        what: 'the trace line after the third save',
        process: watch,
        timeoutMs: 60_000,
      })
      expect(watch.output()).toMatch(
        /trace: api_requests ROW EXCLUSIVE \(1 seq scan\(s\), 200 rows read, 200 updated\) — WOULD STALL THE PROXY: api_requests scan, api_requests row-updates/,
      )
      // The trace ran on the scratch database and was rolled back there; watch applied the save here.
      const models = await withClient(db.databaseUrl, (c) => c.query(`select model from api_requests`))
      expect(models.rows, watch.output()).toEqual([{ model: 'watched' }])
    } finally {
      const ended = await watch.kill('SIGINT')
      expect(ended.all).not.toMatch(/not applied/)
    }
  })
})
