/**
 * Drill: backfills wait for the database's health (hooks/runner/health/). A private embedded
 * primary with a real streaming standby (pg_basebackup -R), a Docker-init database adopted by
 * `db:migrate --schema-only`, then `db:backfill` as an operator runs it:
 *
 *  - the standby's replay is paused: the backfill stops writing within about one batch past
 *    HOOKS_MAX_REPLICA_LAG_MB, db:status shows `throttled: …`, and after
 *    pg_wal_replay_resume() it finishes with the end state of an unthrottled run, each row
 *    written once;
 *  - a physical replication slot with no consumer holds it — both of its workers, and a
 *    second db:backfill that joins its walk; dropping the slot lets them go on;
 *  - a staged backfill (subtask-links, batch-runner.ts) waits before its batches too;
 *  - SIGTERM while it waits stops it at once, resumable;
 *  - a standby that goes away while paused does not hold it: its walsender leaves
 *    pg_stat_replication and the backfill finishes;
 *  - a role without pg_monitor cannot read the standbys' positions: said once, not waited on;
 *  - WAL segments the archiver has not archived (archive_command failing) hold it; once the
 *    archive works again it goes on.
 *
 * Outcomes are read from the database (ledger, audit rows per transaction, WAL positions).
 * Skipped, like the other private-server drills, only when the tests use an external server
 * (TEST_ROOT_DATABASE_URL), which this file cannot give a standby.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openClient } from '../../lib/connection.js'
import { createThrottle } from '../../hooks/runner/health/throttle.js'
import { loadHealthLimits } from '../../hooks/runner/health/limits.js'
import { createTestDatabases, dropDatabase, rootUrl, urlFor, withClient } from '../helpers/databases.js'
import {
  checksums,
  closeWriteGate,
  fillProxyLikeRows,
  GATE_PATIENT,
  ledger,
  loadFixture,
  runDb,
  startDb,
  waitFor,
  type Background,
} from '../helpers/drills.js'
import { usePrivateEmbeddedServer } from '../helpers/private-server.js'
import { restartEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { type Standby, startStandby } from '../helpers/standby.js'

const { enabled, dataRoot } = usePrivateEmbeddedServer('standby-throttle')
const TIMEOUT = 180_000
const ROWS = 1500
/** Rows per batch: fixed (no adaptive sizing), so that "one batch" is a known amount. */
const BATCH = 40

// Test-only: every UPDATE of a per-row column by a hooks session, with its transaction and
// where the WAL stood when it was made.
const AUDIT = `
  create schema test_audit;
  create table test_audit.row_writes (request_id uuid not null, txid bigint not null default txid_current(),
                                      lsn pg_lsn not null default pg_current_wal_insert_lsn());
  create function test_audit.record() returns trigger language plpgsql as $$
  begin
    if current_setting('application_name') like 'migration hooks%' then
      insert into test_audit.row_writes (request_id) values (new.request_id);
    end if;
    return new;
  end $$;
  create trigger record_row_writes after update on public.api_requests for each row
    when (old.task_tool_invocation is distinct from new.task_tool_invocation
          or old.parent_request_id is distinct from new.parent_request_id
          or old.account_id is distinct from new.account_id
          or old.system_hash is distinct from new.system_hash)
    execute function test_audit.record();`

/** The runs' settings: small fixed batches, no autovacuum waits (not what these tests look at). */
const RUN = {
  HOOKS_BATCH_SIZE: String(BATCH),
  HOOKS_BATCH_TARGET_MS: '0',
  HOOKS_HEALTH_CHECK_MS: '0',
  HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS: '0',
}

/**
 * The paused standby holds the runner by its lag in MB only: its lag in seconds grows with the
 * clock, so which limit tripped first would depend on how fast the machine is.
 */
const LAG_MB_ONLY = { HOOKS_MAX_REPLICA_LAG_MB: '1', HOOKS_MAX_REPLICA_LAG_SECONDS: '0' }

let standby: Standby
let source: string
let referenceSums: Awaited<ReturnType<typeof checksums>>
let referenceWritten: number
const copies: string[] = []

/** A copy of the adopted, not yet backfilled database (with the audit trigger). */
async function copy(label: string): Promise<{ url: string; env: NodeJS.ProcessEnv }> {
  const name = `${label}_${randomBytes(4).toString('hex')}`
  await withClient(rootUrl(), (c) => c.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(source)}`))
  copies.push(name)
  const url = urlFor(name)
  return { url, env: { DATABASE_URL: url, SHADOW_DATABASE_URL: urlFor(`${name}_shadow`), ROOT_DATABASE_URL: rootUrl() } }
}

const one = async <T>(url: string, sql: string, params: unknown[] = []): Promise<T> =>
  withClient(url, async (c) => (await c.query(sql, params)).rows[0] as T)

/** Rows the hooks wrote, how many of them more than once, and the largest transaction. */
const writes = (url: string) =>
  one<{ rows: number; twice: number; max_txn: number }>(
    url,
    `select count(*)::int as rows,
            (select count(*)::int from (select 1 from test_audit.row_writes group by request_id having count(*) > 1) t) as twice,
            coalesce((select max(n) from (select count(*)::int as n from test_audit.row_writes group by txid) t), 0) as max_txn
       from test_audit.row_writes`,
  )

const throttledEntries = (url: string) =>
  withClient(url, async (c) => {
    // The runner creates the ledger when it starts, and then adds the later columns.
    const { rows: ready } = await c.query(
      `select 1 from pg_attribute where attrelid = to_regclass('migration_hooks.backfills') and attname = 'throttled_since'`,
    )
    if (ready.length === 0) return []
    const { rows } = await c.query<{ name: string; throttled: string; since: Date }>(
      `select name, throttled, throttled_since as since from migration_hooks.backfills where throttled is not null order by name`,
    )
    return rows
  })

/** Waits until the runner records a wait whose text matches `what`; returns the entries. */
const waitUntilThrottled = (url: string, what: RegExp, run: Background) =>
  waitFor(async () => ((await throttledEntries(url)).some((e) => what.test(e.throttled)) ? throttledEntries(url) : null), {
    what: `the backfill to wait (${what})`,
    process: run,
    timeoutMs: 60_000,
  })

/** Writes stay where they are for `ms` (several of the runner's looks at the signals). */
async function expectNoWritesFor(url: string, ms: number): Promise<number> {
  const before = (await writes(url)).rows
  await new Promise((r) => setTimeout(r, ms))
  expect((await writes(url)).rows, 'rows written while the backfill should be waiting').toBe(before)
  return before
}

/**
 * What the hooks sessions that are not running a statement hold: state, lock and the
 * transaction holding it. pg_stat_activity is read once per query and pg_locks live, so a
 * session caught between the two can look idle with a short statement's locks.
 */
const heldByIdleRunner = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ application_name: string; state: string; locktype: string | null; mode: string; vxid: string | null }>(
      `select a.application_name, a.state, l.locktype, l.mode, l.virtualtransaction as vxid
         from pg_stat_activity a left join pg_locks l on l.pid = a.pid
        where a.datname = current_database() and a.application_name like 'migration hooks%' and a.state <> 'active'`,
    )
    return rows
  })

/** The run finished like the unthrottled one: same rows and values, each row written once, nothing left throttled. */
async function expectSameEndState(url: string, run: Background): Promise<void> {
  const r = await run.result
  expect(r.exitCode, r.all).toBe(0)
  expect((await ledger(url)).every((e) => e.state === 'done')).toBe(true)
  expect(await throttledEntries(url)).toEqual([])
  const w = await writes(url)
  expect(w.twice).toBe(0)
  expect(w.rows).toBe(referenceWritten)
  expect(await checksums(url)).toEqual(referenceSums)
}

describe.skipIf(!enabled)('backfills wait for the database’s health', () => {
  beforeAll(async () => {
    standby = await startStandby(dataRoot)
    const db = await createTestDatabases('throttle_src')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    await fillProxyLikeRows(db.databaseUrl, ROWS, 3)
    const schema = await runDb(['migrate', '--schema-only'], db.env)
    expect(schema.exitCode, schema.all).toBe(0)
    await withClient(db.databaseUrl, (c) => c.query(AUDIT))
    // GIN pending lists merged and the heap vacuumed now: the WAL the runs write is theirs.
    await withClient(db.databaseUrl, (c) => c.query('vacuum analyze public.api_requests'))
    source = db.name
    // The reference: the same database backfilled with the throttle off.
    const ref = await copy('throttle_ref')
    const r = await runDb(['backfill'], { ...ref.env, ...RUN, HOOKS_THROTTLE: 'off' })
    expect(r.exitCode, r.all).toBe(0)
    referenceSums = await checksums(ref.url)
    const w = await writes(ref.url)
    expect(w.twice).toBe(0)
    expect(w.rows).toBeGreaterThan(ROWS)
    referenceWritten = w.rows
  }, TIMEOUT)

  afterAll(async () => {
    standby?.remove()
    if (process.env.KEEP_TEST_DATABASES) return
    for (const name of copies.splice(0)) await dropDatabase(name)
  }, TIMEOUT)

  it('a paused standby: stops within about one batch past the limit, db:status shows it, and it finishes once replay resumes', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await copy('throttle_paused')
    const pausedAt = await standby.pauseReplay()
    let run: Background | undefined
    try {
      run = startDb(['backfill'], { ...db.env, ...RUN, ...LAG_MB_ONLY })
      const entries = await waitUntilThrottled(db.url, /standby 127\.0\.0\.1 .* MB behind \(limit 1 MB\)/, run)
      // Every backfill the row pass writes for is marked, sub-task linking's links included
      // (account-ids, with no mapping file, is skipped).
      expect(entries.map((e) => e.name)).toEqual(['parent-request-ids', 'subtask-links', 'system-hash', 'task-invocations'])
      const written = await expectNoWritesFor(db.url, 600)
      expect(written).toBeGreaterThan(0)
      // While it waits the runner holds no transaction, and no lock but the session-level
      // hooks lock. Two looks 500 ms apart: a transaction kept open holds its locks in both;
      // the chunk's heartbeat (an autocommit UPDATE at each of the throttle's looks, every
      // 200 ms) or a health-session statement is a new transaction each time, and one in
      // flight may meet a look.
      const looks = [await heldByIdleRunner(db.url)]
      await new Promise((r) => setTimeout(r, 500))
      looks.push(await heldByIdleRunner(db.url))
      const lockingTxns = looks.map(
        (held) => new Set(held.filter((r) => r.locktype !== null && r.locktype !== 'advisory').map((r) => r.vxid)),
      )
      for (const held of looks) {
        expect(held.filter((r) => r.state !== 'idle')).toEqual([])
        expect(held.filter((r) => r.locktype === 'advisory' && r.application_name === 'migration hooks')).toHaveLength(1)
      }
      expect([...lockingTxns[0]].filter((vxid) => lockingTxns[1].has(vxid))).toEqual([])
      // How far past the limit it went: batch transactions whose writes landed more than 1 MB
      // past where replay stopped (the audit rows come at the end of a batch's UPDATE). The
      // runner looks before every batch (HOOKS_HEALTH_CHECK_MS=0), so only the batch that
      // began just under the limit may.
      const past = await one<{ batches: number; behind: number }>(
        db.url,
        `select (select count(*)::int from (select min(lsn) as first from test_audit.row_writes group by txid) t
                  where first > $1::pg_lsn + 1048576) as batches,
                pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8 as behind`,
        [pausedAt],
      )
      expect(past.behind).toBeGreaterThan(1024 * 1024)
      expect(past.batches, `${written} rows written while paused`).toBeLessThanOrEqual(1)
      // db:status, from any machine: unfinished (bit 4), and what the runner waits for.
      const status = await runDb(['status'], db.env)
      expect(status.exitCode & 4, status.all).toBe(4)
      expect(status.all).toMatch(
        /system-hash .*throttled: standby 127\.0\.0\.1 \(application_name \S+\) is [\d.]+ MB behind \(limit 1 MB\) since \d\d:\d\d:\d\d UTC/,
      )
      // It said once what it waited for, however many times it looked while replay stood still.
      expect(run.output().match(/^waiting: standby/gm)).toHaveLength(1)
      await standby.resumeReplay()
      await expectSameEndState(db.url, run)
      // And that it went on. While the standby catches up the runner may pass the 1 MB limit
      // again on a slow disk: a new wait, said once too and ended the same way.
      const episodes = run.output().match(/^waiting: standby(?!.*\(waiting since)/gm) ?? []
      expect(run.output().match(/^health: going on after waiting/gm) ?? []).toHaveLength(episodes.length)
    } finally {
      await standby.resumeReplay()
      if (run && !run.exited()) await run.kill('SIGKILL')
    }
  })

  it('a replication slot with no consumer holds both workers and a joining runner; dropping the slot lets them go on', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await copy('throttle_slot')
    const env = {
      ...db.env,
      ...RUN,
      ...GATE_PATIENT,
      HOOKS_MAX_SLOT_RETAINED_MB: '1',
      // The streaming standby is not what this test is about.
      HOOKS_MAX_REPLICA_LAG_MB: '0',
      HOOKS_MAX_REPLICA_LAG_SECONDS: '0',
    }
    const runs: Background[] = []
    // The slot appears once the walk has begun: sub-task linking's deciding steps, before the
    // walk, would otherwise wait for it too, and there is no walk to join then. Its first
    // batch waits at the gate while the slot is made to retain more than the limit.
    const gate = await closeWriteGate(db.url)
    try {
      runs.push(startDb(['backfill'], { ...env, HOOKS_WORKERS: '2' }))
      await gate.waitUntilBlocked(runs[0])
      await withClient(db.url, async (c) => {
        await c.query(`select pg_create_physical_replication_slot('throttle_test_cdc', true)`)
        await c.query(`create table test_audit.slot_filler as select g, repeat('x', 500) as t from generate_series(1, 5000) g`)
      })
      await gate.remove()
      await waitUntilThrottled(
        db.url,
        /inactive physical replication slot throttle_test_cdc retains [\d.]+ MB of WAL \(limit 1 MB\)/,
        runs[0],
      )
      // A second db:backfill joins the walk: it claims a chunk, and waits before its first batch too.
      runs.push(startDb(['backfill'], env))
      const holders = () =>
        one<{ processes: number }>(
          db.url,
          `select count(distinct split_part(claimed_by, ':', 2))::int as processes from migration_hooks.row_pass_chunks
            where claimed_by is not null and not done`,
        )
      await waitFor(async () => (await holders()).processes === 2, { what: 'the joining runner to claim a chunk', process: runs[1] })
      await expectNoWritesFor(db.url, 600)
      expect(runs.map((r) => r.exited())).toEqual([false, false])
    } finally {
      await gate.remove()
      await withClient(db.url, (c) =>
        c.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = 'throttle_test_cdc'`),
      )
    }
    try {
      const joined = await runs[1].result
      expect(joined.exitCode, joined.all).toBe(0)
      expect(joined.all).toMatch(/helped the row pass/)
      await expectSameEndState(db.url, runs[0])
    } finally {
      for (const r of runs) if (!r.exited()) await r.kill('SIGKILL')
    }
  })

  it('a staged backfill (subtask-links) waits before its batches the same way', { timeout: TIMEOUT }, async () => {
    const db = await copy('throttle_staged')
    // The row pass first, unthrottled: only subtask-links is left.
    const perRow = await runDb(['backfill', '--only=task-invocations,parent-request-ids,account-ids,system-hash'], {
      ...db.env,
      ...RUN,
      HOOKS_THROTTLE: 'off',
    })
    expect(perRow.exitCode, perRow.all).toBe(0)
    // A slot with no consumer, already retaining more than the limit.
    await withClient(db.url, async (c) => {
      await c.query(`select pg_create_physical_replication_slot('throttle_test_staged', true)`)
      await c.query(`create table test_audit.filler as select g, repeat('x', 500) as t from generate_series(1, 5000) g`)
    })
    let run: Background | undefined
    try {
      run = startDb(['backfill'], {
        ...db.env,
        ...RUN,
        HOOKS_MAX_SLOT_RETAINED_MB: '1',
        HOOKS_MAX_REPLICA_LAG_MB: '0',
        HOOKS_MAX_REPLICA_LAG_SECONDS: '0',
      })
      const entries = await waitUntilThrottled(db.url, /replication slot throttle_test_staged retains/, run)
      expect(entries.map((e) => e.name)).toEqual(['subtask-links'])
      await expectNoWritesFor(db.url, 600)
      const staged = (await ledger(db.url)).find((e) => e.name === 'subtask-links')
      expect(staged).toMatchObject({ state: 'running', rows_changed: 0 })
    } finally {
      await withClient(db.url, (c) =>
        c.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = 'throttle_test_staged'`),
      )
    }
    try {
      await expectSameEndState(db.url, run)
    } finally {
      if (!run.exited()) await run.kill('SIGKILL')
    }
  })

  it('a role without pg_monitor cannot read the standbys’ lag: it says so once and does not wait; with pg_monitor it waits', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await copy('throttle_roles')
    const role = `throttle_reader_${randomBytes(3).toString('hex')}`
    const password = randomBytes(12).toString('hex')
    await withClient(db.url, (c) => c.query(`create role ${role} login password '${password}'`))
    const url = new URL(db.url)
    url.username = role
    url.password = password
    const limits = { ...loadHealthLimits({}), maxReplicaLagMb: 1, checkIntervalMs: 0, maxAutovacuumWaitSeconds: 0 }
    await standby.pauseReplay()
    try {
      // WAL past the limit for the paused standby to be behind by.
      await withClient(db.url, (c) =>
        c.query(`create table public.throttle_filler as select g, repeat('x', 500) as t from generate_series(1, 5000) g`),
      )
      const lines: string[] = []
      const plain = createThrottle({ limits, log: (l) => lines.push(l), openSession: () => openClient(url.toString(), {}) })
      try {
        expect(await plain.beforeBatch({ backfills: [] })).toEqual({ waited: false })
        expect(await plain.beforeBatch({ backfills: [] })).toEqual({ waited: false })
      } finally {
        await plain.close()
      }
      expect(lines.filter((l) => /cannot read the standby signal .*pg_monitor/.test(l))).toHaveLength(1)
      // With pg_monitor the same role sees the paused standby, and waits (stopped on its first look).
      await withClient(db.url, (c) => c.query(`grant pg_monitor to ${role}`))
      const monitor = createThrottle({
        limits,
        log: (l) => lines.push(l),
        openSession: () => openClient(url.toString(), {}),
        shouldStop: () => 'test',
      })
      try {
        expect(await monitor.beforeBatch({ backfills: [] })).toEqual({ waited: false, stop: 'test' })
      } finally {
        await monitor.close()
      }
    } finally {
      await standby.resumeReplay()
      await withClient(db.url, (c) => c.query(`drop owned by ${role}; drop role ${role}`)).catch(() => {})
    }
  })

  it('SIGTERM while it waits stops the runner at once: exit 0, resumable, nothing left marked throttled', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await copy('throttle_term')
    await standby.pauseReplay()
    const run = startDb(['backfill'], { ...db.env, ...RUN, ...LAG_MB_ONLY })
    try {
      await waitUntilThrottled(db.url, /standby 127\.0\.0\.1 .* MB behind/, run)
      const ended = await run.kill('SIGTERM')
      expect(ended.exitCode, ended.all).toBe(0)
      const entries = await ledger(db.url)
      expect(entries.filter((e) => e.state === 'running')).toEqual([])
      // It waited in sub-task linking's deciding steps or in the walk, depending on where the
      // WAL crossed the limit; either way nothing is done and the rest is resumable.
      expect(entries.find((e) => e.name === 'subtask-links')).toMatchObject({ state: 'pending' })
      expect(entries.find((e) => e.name === 'system-hash')?.state ?? 'not begun').toMatch(/^(pending|not begun)$/)
      expect(await throttledEntries(db.url)).toEqual([])
      // No chunk is left claimed (if the walk had begun): the next runner resumes at once.
      const walked = await one<{ t: string | null }>(db.url, `select to_regclass('migration_hooks.row_pass_chunks')::text as t`)
      if (walked.t !== null) {
        const claimed = await one<{ n: number }>(
          db.url,
          `select count(*)::int as n from migration_hooks.row_pass_chunks where claimed_by is not null`,
        )
        expect(claimed.n).toBe(0)
      }
    } finally {
      await standby.resumeReplay()
      if (!run.exited()) await run.kill('SIGKILL')
    }
    const rest = startDb(['backfill'], { ...db.env, ...RUN })
    await expectSameEndState(db.url, rest)
  })

  // Last: it stops the standby.
  it('a standby that goes away while paused does not hold the backfill', { timeout: TIMEOUT }, async () => {
    const db = await copy('throttle_gone')
    await standby.pauseReplay()
    const run = startDb(['backfill'], { ...db.env, ...RUN, ...LAG_MB_ONLY })
    try {
      await waitUntilThrottled(db.url, /standby 127\.0\.0\.1 .* MB behind/, run)
      await expectNoWritesFor(db.url, 600)
      await standby.stop()
      await expectSameEndState(db.url, run)
    } finally {
      if (!run.exited()) await run.kill('SIGKILL')
    }
  })

  // After the standby's: it restarts the server, with archive_mode on.
  it('WAL segments the archiver has not archived hold the backfill; once they are archived it goes on', { timeout: TIMEOUT }, async () => {
    const ready = (url: string) =>
      one<{ n: number }>(url, `select count(*)::int as n from pg_ls_archive_statusdir() where name like '%.ready'`)
    // An archive_command that fails: finished segments stay .ready, as behind a broken archive.
    await withClient(rootUrl(), async (c) => {
      await c.query(`alter system set archive_mode = 'on'`)
      await c.query(`alter system set archive_command = 'false'`)
    })
    let run: Background | undefined
    try {
      restartEmbeddedServer(dataRoot)
      const db = await copy('throttle_archive')
      await withClient(db.url, async (c) => {
        for (let i = 0; i < 3; i++) {
          await c.query(`create table test_audit.segment_${i} as select ${i} as i`)
          await c.query('select pg_switch_wal()')
        }
      })
      expect((await ready(db.url)).n).toBeGreaterThanOrEqual(3)
      run = startDb(['backfill'], {
        ...db.env,
        ...RUN,
        HOOKS_MAX_ARCHIVE_BACKLOG_SEGMENTS: '1',
        HOOKS_MAX_REPLICA_LAG_MB: '0',
        HOOKS_MAX_REPLICA_LAG_SECONDS: '0',
      })
      await waitUntilThrottled(db.url, /^\d+ WAL segments wait for the archiver \(limit 1\)$/, run)
      await expectNoWritesFor(db.url, 600)
      // The archive works again: the backlog goes, and the backfill with it.
      await withClient(db.url, async (c) => {
        await c.query(`alter system set archive_command = 'true'`)
        await c.query('select pg_reload_conf()')
      })
      await expectSameEndState(db.url, run)
      expect((await ready(db.url)).n).toBeLessThanOrEqual(1)
    } finally {
      if (run && !run.exited()) await run.kill('SIGKILL')
      // Back to the default at the server's next start.
      await withClient(rootUrl(), async (c) => {
        await c.query('alter system reset archive_mode')
        await c.query('alter system reset archive_command')
      })
    }
  })
})
