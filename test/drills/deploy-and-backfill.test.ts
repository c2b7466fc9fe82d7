/**
 * Drill: deploys never wait on backfills. The deploy lock covers the schema step only; the
 * backfills run under the hooks lock, by whichever process got it first, and `db:status`
 * tells a live runner from a dead one. A later migration can require a backfill to be done.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import {
  checksums,
  closeWriteGate,
  committedFiles,
  GATE_PATIENT,
  ledger,
  ledgerOutcome,
  loadFixture,
  runDb,
  startDb,
  waitFor,
  waitForNoSessions,
} from '../helpers/drills.js'
import { graphileMigrate, projectCopy } from '../helpers/project.js'
import { expectComplete, uninterrupted } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000

const runningEntry = async (url: string) => (await ledger(url)).find((e) => e.state === 'running')

describe('deploys and backfills', () => {
  it('a second db:migrate during a running backfill exits 0 at once; a killed runner is resumed by db:backfill', {
    timeout: TIMEOUT,
  }, async () => {
    const reference = await uninterrupted(FIXTURE)
    const db = await createTestDatabases('deploy_busy')
    await loadFixture(db.databaseUrl, FIXTURE)
    // The backfill stays running for as long as the test keeps its write gate closed.
    const gate = await closeWriteGate(db.databaseUrl)
    const first = startDb(['migrate'], { ...db.env, ...GATE_PATIENT })
    try {
      await gate.waitUntilBlocked(first)
      expect(await runningEntry(db.databaseUrl)).toBeDefined()
      // Another replica deploys meanwhile: the schema is up to date, the backfills are taken.
      const second = await runDb(['migrate'], db.env)
      expect(second.exitCode, second.all).toBe(0)
      expect(second.all).toMatch(/another process is running the backfills/)
      expect(second.all).toMatch(/run by \S+ pid \d+/)
      expect(second.all).toMatch(/\d+% of ~\d/)
      expect(first.exited(), 'the second deploy returned while the first still ran its backfills').toBe(false)
      const schemaOnly = await runDb(['migrate', '--schema-only'], db.env)
      expect(schemaOnly.exitCode, schemaOnly.all).toBe(0)
      expect(schemaOnly.all).toMatch(/already up to date/)
      expect(first.exited()).toBe(false)
      // db:status while it runs: not clean (4), and the runner is alive.
      const live = await runDb(['status'], db.env)
      expect(live.exitCode & 4).toBe(4)
      expect(live.all).toMatch(/a runner is working/)
      expect(first.exited()).toBe(false)
    } finally {
      await first.kill('SIGKILL')
      // The killed runner's session still waits at the gate; let it through, and the server
      // then finds its client gone and rolls the batch back.
      await gate.remove()
      await waitForNoSessions(db.databaseUrl)
    }
    // The runner died mid-backfill: the ledger still says running, and status says it is gone.
    expect(await runningEntry(db.databaseUrl)).toBeDefined()
    const dead = await runDb(['status'], db.env)
    expect(dead.exitCode & 4).toBe(4)
    expect(dead.all).toMatch(/INTERRUPTED: \S+ pid \d+ is gone/)
    // The next runner takes over at once and completes the work.
    const resumed = await runDb(['backfill'], db.env)
    expect(resumed.exitCode, resumed.all).toBe(0)
    const status = await runDb(['status'], db.env)
    expect(status.exitCode, status.all).toBe(0)
    await expectComplete(db.databaseUrl)
    expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
  })

  it('db:backfill stops after the current batch on SIGTERM, records it, exits 0; the next run finishes', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('backfill_term')
    await loadFixture(db.databaseUrl, FIXTURE)
    const schema = await runDb(['migrate', '--schema-only'], db.env)
    expect(schema.exitCode, schema.all).toBe(0)
    expect(await ledger(db.databaseUrl)).toEqual([])
    const gate = await closeWriteGate(db.databaseUrl)
    // One page per batch: the gated batch is not the walk's last, after which the runner stops.
    const runner = startDb(['backfill'], { ...db.env, ...GATE_PATIENT, HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_TARGET_MS: '0' })
    let ending: ReturnType<typeof runner.kill> | undefined
    try {
      // SIGTERM while a batch waits at the gate: the runner lets that batch commit, then stops.
      await gate.waitUntilBlocked(runner)
      ending = runner.kill('SIGTERM')
      await waitFor(async () => /SIGTERM: finishing the current batch/.test(runner.output()), {
        what: 'the runner to take the SIGTERM',
        process: runner,
      })
    } finally {
      await gate.remove()
    }
    const ended = await (ending ?? runner.result)
    expect(ended.exitCode, ended.all).toBe(0)
    expect(ended.all).toMatch(/stopped \(SIGTERM\)/)
    const entries = await ledger(db.databaseUrl)
    expect(entries.some((e) => e.state === 'running')).toBe(false)
    const stopped = entries.find((e) => e.state === 'pending' && e.cursor !== null)
    expect(stopped, JSON.stringify(entries)).toBeDefined()
    const rest = await runDb(['backfill'], db.env)
    expect(rest.exitCode, rest.all).toBe(0)
    await expectComplete(db.databaseUrl)
  })

  it('a migration requiring an unfinished backfill fails with nothing applied, and passes once it is done', {
    timeout: TIMEOUT,
  }, async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('finalize')
    await loadFixture(db.databaseUrl, FIXTURE)
    const schema = await runDb(['migrate', '--schema-only'], db.env, dir)
    expect(schema.exitCode, schema.all).toBe(0)
    writeFileSync(
      join(dir, 'migrations', 'current.sql'),
      `create table if not exists public.finalize_marker (id int);\nselect migration_hooks.require_backfill('system-hash');\n`,
    )
    // Committed on a development database (fresh, like the shadow commit rebuilds): nothing
    // to backfill there, so the guard passes.
    const dev = await createTestDatabases('finalize_dev')
    expect((await graphileMigrate(['migrate'], dev.env, dir)).exitCode).toBe(0)
    const commit = await graphileMigrate(['commit', '--message', 'needs system hash'], dev.env, dir)
    expect(commit.exitCode, commit.all).toBe(0)
    const marker = () =>
      withClient(db.databaseUrl, async (c) => (await c.query(`select to_regclass('public.finalize_marker') is not null as ok`)).rows[0].ok)

    const refused = await runDb(['migrate', '--schema-only'], db.env, dir)
    expect(refused.exitCode).not.toBe(0)
    expect(refused.all).toMatch(/needs the backfill "system-hash" to be complete, and it has never run/)
    expect(refused.all).toMatch(/db:backfill/)
    expect(await marker()).toBe(false)
    expect((await withClient(db.databaseUrl, (c) => c.query('select count(*)::int as n from graphile_migrate.migrations'))).rows[0].n).toBe(
      committedFiles().length,
    )

    const backfilled = await runDb(['backfill'], db.env, dir)
    expect(backfilled.exitCode, backfilled.all).toBe(0)
    const applied = await runDb(['migrate', '--schema-only'], db.env, dir)
    expect(applied.exitCode, applied.all).toBe(0)
    expect(applied.all).toMatch(/Applied 1 migration\(s\)/)
    expect(await marker()).toBe(true)
  })
})

describe('rows written during a backfill', () => {
  it('pre-existing rows are all filled; rows the application inserted meanwhile, before or after the cursor, are not touched', {
    timeout: TIMEOUT,
  }, async () => {
    const reference = await uninterrupted(FIXTURE)
    const db = await createTestDatabases('high_water')
    await loadFixture(db.databaseUrl, FIXTURE)
    expect((await runDb(['migrate', '--schema-only'], db.env)).exitCode).toBe(0)
    // The backfill waits at the test's write gate while the application inserts.
    const gate = await closeWriteGate(db.databaseUrl)
    const runner = startDb(['backfill', '--only=system-hash'], { ...db.env, ...GATE_PATIENT })
    const inserted: string[] = []
    try {
      await gate.waitUntilBlocked(runner)
      expect(await runningEntry(db.databaseUrl)).toBeDefined()
      // The application inserts rows whose keys sort before and after any cursor position,
      // with the system_hash it computed itself left NULL (as it may for odd prompts).
      await withClient(db.databaseUrl, async (c) => {
        for (let i = 0; i < 6; i++) {
          for (const id of [`00000000-0000-4000-8000-0000000aa${i}00`, `ffffffff-ffff-4fff-bfff-fffffffaa${i}00`]) {
            await c.query(
              `insert into api_requests (request_id, train_id, timestamp, method, path, body, system_hash)
               values ($1, 'train-app', now(), 'POST', '/v1/messages', '{"system": "You are new here."}'::jsonb, null)`,
              [id],
            )
            inserted.push(id)
          }
        }
      })
      expect(runner.exited(), 'the inserts happened while the backfill ran').toBe(false)
    } finally {
      await gate.remove()
      const ended = await runner.result
      expect(ended.exitCode, ended.all).toBe(0)
    }
    // Nothing was written into the application's rows…
    const app = await withClient(db.databaseUrl, (c) =>
      c.query(`select count(*)::int as n from api_requests where request_id = any($1::uuid[]) and system_hash is null`, [inserted]),
    )
    expect(app.rows[0].n).toBe(inserted.length)
    // …and every pre-existing row got exactly what an uninterrupted run gives.
    await withClient(db.databaseUrl, (c) => c.query(`delete from api_requests where request_id = any($1::uuid[])`, [inserted]))
    const hashes = (url: string) =>
      withClient(url, async (c) => (await c.query(`select request_id::text, system_hash from api_requests order by 1`)).rows)
    expect(await hashes(db.databaseUrl)).toEqual(await hashes(reference.databaseUrl))
    expect(ledgerOutcome(await ledger(db.databaseUrl)).find((e) => e.name === 'system-hash')).toEqual(
      ledgerOutcome(await ledger(reference.databaseUrl)).find((e) => e.name === 'system-hash'),
    )
  })
})

describe('db:migrate --plan', () => {
  it('changes nothing, and names the pending migrations, the concurrent index builds, the validations and the backfills', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await createTestDatabases('plan')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    const before = await checksums(db.databaseUrl)
    const schemas = () =>
      withClient(
        db.databaseUrl,
        async (c) => (await c.query(`select nspname from pg_namespace where nspname in ('graphile_migrate', 'migration_hooks')`)).rows,
      )
    const r = await runDb(['migrate', '--plan'], db.env)
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`Pending migrations \\(${committedFiles().length}\\):`))
    expect(r.stdout).toMatch(/000015-legacy-014-train-members\.sql/)
    // Docker-init lacks this index: built concurrently, its table's size named. Its
    // idx_requests_model is renamed into place, not built.
    expect(r.stdout).toMatch(/idx_api_requests_train_timestamp_response on api_requests \(~\d[\d,]* rows, \d+ \w+\)/)
    expect(r.stdout).not.toMatch(/idx_api_requests_model on/)
    expect(r.stdout).toMatch(/Backfills to run .*api_requests has ~\d/)
    expect(r.stdout).toMatch(/system-hash: never run/)
    // What it will cost the server, before anything starts.
    expect(r.stdout).toMatch(/WAL: ~\d+ (MB|GB)/)
    expect(r.stdout).toMatch(/api_requests heap: grows ~\d+ (MB|GB)/)
    expect(r.stdout).toMatch(/free disk needed on the primary: ~[\d.]+ (MB|GB) \(heap \+ index growth \+ max_wal_size, [\d.]+ (MB|GB)\)/)
    expect(await checksums(db.databaseUrl)).toEqual(before)
    expect(await schemas()).toEqual([])
  })
})

describe('a db:migrate that changes nothing', () => {
  it('refreshes no hourly_stats and runs no ANALYZE', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('noop')
    await loadFixture(db.databaseUrl, FIXTURE)
    expect((await runDb(['migrate'], db.env)).exitCode).toBe(0)
    const facts = () =>
      withClient(db.databaseUrl, async (c) => {
        const stats = await c.query(`select coalesce(sum(request_count), 0)::int as n from hourly_stats`)
        const analyzed = await c.query(`select last_analyze from pg_stat_user_tables where relname = 'api_requests'`)
        return { summarised: stats.rows[0].n as number, lastAnalyze: String(analyzed.rows[0].last_analyze) }
      })
    const before = await facts()
    // A row the proxy writes now would show in hourly_stats after any refresh.
    await withClient(db.databaseUrl, (c) =>
      c.query(
        `insert into api_requests (request_id, train_id, timestamp, method, path) values (gen_random_uuid(), 'train-now', now(), 'POST', '/v1/messages')`,
      ),
    )
    const again = await runDb(['migrate'], db.env)
    expect(again.exitCode, again.all).toBe(0)
    expect(await facts()).toEqual(before)
  })
})

describe('a failing backfill', () => {
  it('never fails the schema-only deploy; db:backfill reports it, db:status stays non-zero until it is fixed', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await createTestDatabases('failing')
    await loadFixture(db.databaseUrl, FIXTURE)
    const bad = { ACCOUNT_MAPPING_FILE: '/nonexistent/accounts.json' }
    const deploy = await runDb(['migrate', '--schema-only'], { ...db.env, ...bad })
    expect(deploy.exitCode, deploy.all).toBe(0)
    const backfill = await runDb(['backfill'], { ...db.env, ...bad })
    expect(backfill.exitCode).toBe(1)
    expect(backfill.all).toMatch(/account-ids/)
    expect((await ledger(db.databaseUrl)).find((e) => e.name === 'account-ids')?.state).toBe('failed')
    // The next deploy's schema step is not held up by it either.
    const again = await runDb(['migrate', '--schema-only'], { ...db.env, ...bad })
    expect(again.exitCode, again.all).toBe(0)
    expect((await runDb(['status'], { ...db.env, ...bad })).exitCode & 4).toBe(4)
    // Fixed (no mapping configured): the next runner retries it and finishes.
    expect((await runDb(['backfill'], db.env)).exitCode).toBe(0)
    expect((await runDb(['status'], db.env)).exitCode).toBe(0)
  })
})

describe('the online schema step', () => {
  it('runs only the index statements the chain queues, and refuses anything else', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('online_queue')
    expect((await runDb(['migrate'], db.env)).exitCode).toBe(0)
    await withClient(db.databaseUrl, (c) =>
      c.query(`insert into migration_hooks.online_index_work (name, statement) values ('evil', 'drop table public.trains cascade')`),
    )
    const r = await runDb(['migrate'], db.env)
    expect(r.exitCode).not.toBe(0)
    expect(r.all).toMatch(/online_index_work row "evil" holds a statement the online schema step does not run/)
    const trains = await withClient(db.databaseUrl, (c) => c.query(`select to_regclass('public.trains') is not null as ok`))
    expect(trains.rows[0].ok).toBe(true)
  })
})
