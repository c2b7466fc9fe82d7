/**
 * The runner: ledger, resumption, version bumps, failures, dry runs, --only, locking,
 * lock-timeout retries, status, shadow runs and script mode — asserted on database state.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { BACKFILLS } from '../../hooks/backfills/index.js'
import { systemHash } from '../../hooks/backfills/system-hash.js'
import { subtaskLinks } from '../../hooks/backfills/subtask-links.js'
import type { Backfill } from '../../hooks/runner/backfill.js'
import { MIN_BATCH_SIZE } from '../../hooks/runner/batch-sizer.js'
import { keyWalkStep, rangeFilter } from '../../hooks/runner/key-walk.js'
import { HOOKS_LOCK_KEY } from '../../hooks/runner/hooks-lock.js'
import { hookStatus } from '../../hooks/run.js'
import { createTestDatabases } from '../helpers/databases.js'
import { backfillPartWay, closeWriteGate, GATE_PATIENT } from '../helpers/drills.js'
import { tsxScript } from '../helpers/project.js'
import { copyDatabase, freshDatabase, inDb } from './support/template-databases.js'
import {
  conv,
  firstRequest,
  fullSnapshot,
  insertRows,
  ledgerRow,
  mappingFile,
  owned,
  req,
  runQuiet,
  runStoppedAt,
  taskResponse,
  type RowSpec,
} from './support/fixtures.js'
import { openClient } from '../../lib/connection.js'

const T = (n: number) => new Date(Date.UTC(2025, 0, 1, 10, 0, n)).toISOString()

/** Rows for every backfill: Task calls, a sub-task, trains to map, system prompts. */
function someRows(count = 12): RowSpec[] {
  const rows: RowSpec[] = [
    { id: req(1), ts: T(0), conversation: conv(1), body: firstRequest('root'), response: taskResponse([{ id: 'toolu_1', prompt: 'Go' }]) },
    { id: req(2), ts: T(1), conversation: conv(2), body: firstRequest('Go') },
  ]
  for (let i = 3; i <= count; i++)
    rows.push({ id: req(i), ts: T(i), train: i % 2 ? 'train-a' : 'train-b', body: firstRequest(`q${i}`, `System ${i}`) })
  return rows
}

async function seeded(label: string, rows = someRows()): Promise<string> {
  const url = await freshDatabase(label)
  await inDb(url, (c) => insertRows(c, rows))
  return url
}

const state = (url: string, name: string) => inDb(url, (c) => ledgerRow(c, name))

/**
 * A transaction with an id, left open from before the rows were written: what another test,
 * or the proxy, does on a shared server. Rows written after it stay above every walk's xmin
 * threshold, so the final pass sees them as candidates.
 */
async function seededUnderOldTransaction(
  label: string,
  opts: { rows?: RowSpec[]; beforeInsert?: string } = {},
): Promise<{ url: string; end: () => Promise<void> }> {
  const url = await freshDatabase(label)
  const old = await openClient(url)
  await old.query('begin')
  await old.query('select pg_current_xact_id()')
  await inDb(url, async (c) => {
    if (opts.beforeInsert) await c.query(opts.beforeInsert)
    await insertRows(c, opts.rows ?? someRows())
    await c.query('analyze api_requests')
  })
  return { url, end: () => old.end() }
}

describe('ledger', () => {
  it('a ledger made by the previous release gains the runner columns and keeps its rows', async () => {
    const url = await seeded('ledger_old')
    await inDb(url, async (c) => {
      await c.query(`create schema if not exists migration_hooks`)
      await c.query(`create table migration_hooks.backfills (name text primary key, version integer not null,
        state text not null default 'pending' check (state in ('pending', 'running', 'done', 'failed')), cursor jsonb, step text,
        rows_changed bigint not null default 0, rows_skipped bigint not null default 0, started_at timestamptz, finished_at timestamptz,
        updated_at timestamptz not null default now(), last_error text, note text, config_key text)`)
      await c.query(`insert into migration_hooks.backfills (name, version, state, rows_changed) values ('old-one', 3, 'done', 42)`)
    })
    expect((await runQuiet(url)).ok).toBe(true)
    const old = await inDb(url, (c) =>
      c.query(`select version, state, rows_changed::int, runner_host from migration_hooks.backfills where name = 'old-one'`),
    )
    expect(old.rows).toEqual([{ version: 3, state: 'done', rows_changed: 42, runner_host: null }])
    const mine = await state(url, 'system-hash')
    expect(mine).toMatchObject({ state: 'done' })
    const runner = await inDb(url, (c) =>
      c.query(`select runner_host, runner_pid from migration_hooks.backfills where name = 'system-hash'`),
    )
    expect(runner.rows[0].runner_pid).toBe(process.pid)
  })

  it('lives in the migration_hooks schema with the documented columns', async () => {
    const url = await seeded('ledger')
    expect((await runQuiet(url)).ok).toBe(true)
    const columns = await inDb(url, async (c) => {
      const { rows } = await c.query(
        `select table_schema, column_name from information_schema.columns where table_name = 'backfills' order by ordinal_position`,
      )
      return rows
    })
    expect(new Set(columns.map((r) => r.table_schema))).toEqual(new Set(['migration_hooks']))
    expect(columns.map((r) => r.column_name)).toEqual([
      'name',
      'version',
      'state',
      'cursor',
      'step',
      'rows_changed',
      'rows_skipped',
      'started_at',
      'finished_at',
      'updated_at',
      'last_error',
      'note',
      'config_key',
      'high_water',
      'runner_host',
      'runner_pid',
      'runner_started_at',
      'heartbeat_at',
      'step_total',
      'step_done',
      'step_done_at_start',
      'throttled',
      'throttled_since',
    ])
    await expect(inDb(url, (c) => c.query(`update migration_hooks.backfills set state = 'bogus'`))).rejects.toThrow(/check/)
  })
})

describe('a new version of sub-task linking while the row pass writes its decisions', () => {
  it('is refused with nothing changed, and the version that began finishes as one run would', async () => {
    const source = await copyDatabase('bump_mid_walk')
    const url = source.url
    // A page or two per row (fillfactor 10), so the walk takes many one-page batches.
    await inDb(url, async (c) => {
      await c.query('alter table api_requests set (fillfactor = 10)')
      await insertRows(c, someRows())
    })
    // The same rows (created_at included), run in one go.
    const whole = (await copyDatabase('bump_whole', source.name)).url
    const reference = await runQuiet(whole)
    expect(reference.ok, reference.error).toBe(true)
    // Stop the walk after a batch that wrote: linking's decisions are part-way written.
    const first = await runStoppedAt(url, backfillPartWay('subtask-links', ['walk']), {
      env: { HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_TARGET_MS: '0' },
    })
    expect(first.stopped).toBe(true)
    const version = subtaskLinks.version
    expect(await state(url, 'subtask-links')).toMatchObject({ step: 'walk', version })
    const halfWay = await inDb(url, fullSnapshot)

    const bumped = BACKFILLS.map((b) => (b.name === 'subtask-links' ? { ...b, version: b.version + 1 } : b))
    const refused = await runQuiet(url, { backfills: bumped })
    expect(refused.ok).toBe(false)
    expect(refused.error).toContain(`part-way through writing what version ${version} decided`)
    expect(await inDb(url, fullSnapshot)).toEqual(halfWay)
    expect(await state(url, 'subtask-links')).toMatchObject({ step: 'walk', version, state: 'failed' })

    const rest = await runQuiet(url)
    expect(rest.ok, rest.error).toBe(true)
    expect(await inDb(url, fullSnapshot)).toEqual(await inDb(whole, fullSnapshot))
  })
})

describe('dry run', () => {
  it('reports what would change and writes nothing, not even the ledger', async () => {
    const { url, end } = await seededUnderOldTransaction('dry')
    onTestFinished(end)
    const file = mappingFile('{"train-a": "acc-A"}')
    const before = await inDb(url, fullSnapshot)
    const dry = await runQuiet(url, { dryRun: true, env: { ACCOUNT_MAPPING_FILE: file } })
    expect(dry.ok).toBe(true)
    expect(await inDb(url, fullSnapshot)).toEqual(before)
    expect(await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.backfills') as s`)).rows[0].s)).toBeNull()
    // Each backfill's count is what the real run that follows changes: sub-task linking's
    // too, since it decides from the Task calls as task-invocations computes them, before the
    // row pass writes anything.
    const real = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: file } })
    const counts = (r: typeof dry) => r.summaries.map((s) => [s.name, s.changed, s.skipped])
    expect(counts(dry)).toEqual(counts(real))
    expect(real.summaries.find((s) => s.name === 'account-ids')!.changed).toBe(7)
    expect(real.summaries.find((s) => s.name === 'subtask-links')!.changed).toBeGreaterThan(0)
    // Linking alone is refused while what it needs is not done: it reads the Task calls
    // task-invocations leaves, and parent-request-ids compares conversations before linking.
    const split = await copyDatabase('dry_split')
    await inDb(split.url, (c) => insertRows(c, someRows()))
    // The same rows (created_at included), for a run in one go.
    const whole = (await copyDatabase('dry_whole', split.name)).url
    const untouched = await inDb(split.url, fullSnapshot)
    const alone = await runQuiet(split.url, { only: ['subtask-links'], env: { ACCOUNT_MAPPING_FILE: file } })
    expect(alone.ok).toBe(false)
    expect(alone.error).toContain('add task-invocations, parent-request-ids to --only')
    expect(await inDb(split.url, fullSnapshot)).toEqual(untouched)
    expect((await state(split.url, 'subtask-links'))?.state ?? 'not begun').toBe('not begun')
    // Once they are done, it runs alone, and the two runs end as one run does.
    const first = await runQuiet(split.url, {
      only: ['task-invocations', 'parent-request-ids', 'account-ids', 'system-hash'],
      env: { ACCOUNT_MAPPING_FILE: file },
    })
    expect(first.ok, first.error).toBe(true)
    const second = await runQuiet(split.url, { only: ['subtask-links'], env: { ACCOUNT_MAPPING_FILE: file } })
    expect(second.ok, second.error).toBe(true)
    const one = await runQuiet(whole, { env: { ACCOUNT_MAPPING_FILE: file } })
    expect(one.ok, one.error).toBe(true)
    const linked = (r: typeof one) => r.summaries.find((s) => s.name === 'subtask-links')!.changed
    expect(linked(second)).toBe(linked(one))
    expect(linked(one)).toBeGreaterThan(0)
    expect(await inDb(split.url, fullSnapshot)).toEqual(await inDb(whole, fullSnapshot))
  })

  it('holds no row lock beyond the batch that took it, and still counts every change', async () => {
    // Two or three rows per page (fillfactor 10), so that the row pass's page-range batches
    // are small: the first rows are written by the first batch, long before the last.
    const { url, end } = await seededUnderOldTransaction('dry_locks', {
      rows: someRows(24),
      beforeInsert: 'alter table api_requests set (fillfactor = 10)',
    })
    onTestFinished(end)
    // One page per batch, in page order. The rows on the pages up to those of req(1) and req(2)
    // are written (and their savepoints rolled back) by the first batches; the first write to a
    // later page waits at the gate. Then the dry run is provably past the batches that locked
    // req(1) and req(2), and still running, when another session updates them — with a short
    // lock_timeout, so waiting for the dry run fails.
    const early = await inDb(url, async (c) => {
      const { rows } = await c.query(
        `select request_id::text as id from api_requests
          where (ctid::text::point)[0] <= (select max((ctid::text::point)[0]) from api_requests where request_id = any($1::uuid[]))`,
        [[req(1), req(2)]],
      )
      return rows.map((r) => r.id as string)
    })
    const gate = await closeWriteGate(url, { when: `not (old.request_id = any('{${early.join(',')}}'::uuid[]))` })
    let blockedWrites = 0
    let finished = false
    const dry = runQuiet(url, {
      dryRun: true,
      backfills: [systemHash],
      env: { HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_TARGET_MS: '0', ...GATE_PATIENT },
    }).finally(() => {
      finished = true
    })
    let stillRunning = false
    try {
      await gate.waitUntilBlocked()
      await inDb(url, async (c) => {
        // The dry run has read its first batches: its transaction holds ACCESS SHARE on
        // api_requests until the end.
        const { rows } = await c.query(
          `select 1 from pg_locks l join pg_stat_activity s using (pid)
            where s.application_name = 'migration hooks (dry run)' and l.relation = 'api_requests'::regclass`,
        )
        const reading = rows.length > 0
        expect(reading).toBe(true)
        await c.query(`set lock_timeout = '300ms'`)
        for (const n of [1, 2]) {
          await c.query(`update api_requests set error = error where request_id = $1`, [req(n)]).catch(() => blockedWrites++)
        }
        stillRunning = !finished
      })
    } finally {
      await gate.open()
    }
    const result = await dry
    await gate.remove()
    expect(stillRunning).toBe(true)
    expect(result.ok).toBe(true)
    expect(blockedWrites).toBe(0)
    const real = await runQuiet(url, { backfills: [systemHash] })
    expect(result.summaries[0]!.changed).toBe(real.summaries[0]!.changed)
    expect(real.summaries[0]!.changed).toBeGreaterThan(2)
  })

  it('writes nothing when run as a script with --dry-run either', async () => {
    const url = await seeded('dry_script')
    const before = await inDb(url, fullSnapshot)
    const r = await tsxScript('hooks/run.ts', ['--dry-run'], { GM_DBURL: url })
    expect(r.exitCode, r.all).toBe(0)
    expect(await inDb(url, fullSnapshot)).toEqual(before)
    expect(await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.backfills') as s`)).rows[0].s)).toBeNull()
  })
})

describe('failures', () => {
  it('an invalid mapping file fails account-ids with nothing changed; a fixed file then completes', async () => {
    const url = await seeded('fail_map')
    const bad = mappingFile('{"train-a": "acc-A", "train-b": "acc-B", "train-a": "acc-C"}')
    const failed = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: bad } })
    expect(failed.ok).toBe(false)
    const entry = await state(url, 'account-ids')
    expect(entry).toMatchObject({ state: 'failed' })
    expect(entry!.last_error).toContain(bad)
    expect(entry!.last_error).toContain('"train-a"')
    expect([...(await inDb(url, owned)).values()].every((r) => r.account_id === null)).toBe(true)
    // The other per-row backfills ran in the same pass and are done, sub-task linking too
    // (its steps decide before the pass, which writes its links).
    expect((await state(url, 'parent-request-ids'))!.state).toBe('done')
    expect((await state(url, 'system-hash'))!.state).toBe('done')
    expect((await state(url, 'subtask-links'))!.state).toBe('done')
    expect((await hookStatus(url, { env: { ACCOUNT_MAPPING_FILE: bad } })).clean).toBe(false)

    const good = mappingFile('{"train-a": "acc-A", "train-b": "acc-B"}')
    const fixed = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: good } })
    expect(fixed.ok).toBe(true)
    expect(await state(url, 'account-ids')).toMatchObject({ state: 'done', last_error: null })
    expect((await state(url, 'subtask-links'))!.state).toBe('done')
    const rows = await inDb(url, owned)
    expect(rows.get(req(3))!.account_id).toBe('acc-A')
    expect(rows.get(req(4))!.account_id).toBe('acc-B')
    expect((await hookStatus(url, { env: { ACCOUNT_MAPPING_FILE: good } })).clean).toBe(true)
  })

  it('without a mapping file account-ids is done with a note; configuring one later re-runs it', async () => {
    const url = await seeded('no_map')
    expect((await runQuiet(url)).ok).toBe(true)
    const entry = await state(url, 'account-ids')
    expect(entry).toMatchObject({ state: 'done', note: expect.stringContaining('ACCOUNT_MAPPING_FILE') })
    expect((await inDb(url, owned)).get(req(3))!.account_id).toBeNull()
    expect((await hookStatus(url, { env: {} })).clean).toBe(true)

    const file = mappingFile('{"train-a": "acc-A"}')
    expect((await hookStatus(url, { env: { ACCOUNT_MAPPING_FILE: file } })).clean).toBe(false)
    const later = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: file } })
    expect(later.summaries.find((s) => s.name === 'account-ids')).toMatchObject({ outcome: 'done', changed: 7 })
    expect(later.summaries.filter((s) => s.name !== 'account-ids').every((s) => s.outcome === 'already-done')).toBe(true)
    expect((await inDb(url, owned)).get(req(3))!.account_id).toBe('acc-A')
  })

  it('a failure mid-walk keeps the committed batches; the next run resumes at the stored cursor', async () => {
    const url = await seeded('resume', someRows(30))
    await inDb(url, (c) => c.query(`create table public.seen (request_id uuid, run int)`))
    let run = 1
    let batches = 0
    // A backfill that records which keys each run processed, and fails at its 3rd batch once.
    const probe: Backfill = {
      name: 'probe',
      version: 1,
      description: 'test probe',
      tables: [],
      steps: [
        keyWalkStep('walk', async (ctx, after, upTo) => {
          if (run === 1 && ++batches === 3) throw new Error('injected failure')
          const range = rangeFilter(after, upTo)
          const r = await ctx.client.query(
            `insert into public.seen select request_id, ${run} from public.api_requests where ${range.sql}`,
            range.params,
          )
          return { changed: r.rowCount ?? 0, skipped: 0 }
        }),
      ],
    }
    const env = { HOOKS_BATCH_SIZE: '5' }
    const first = await runQuiet(url, { backfills: [probe], env })
    expect(first.ok).toBe(false)
    expect(await state(url, 'probe')).toMatchObject({ state: 'failed', rows_changed: '10', last_error: 'injected failure' })
    run = 2
    expect((await runQuiet(url, { backfills: [probe], env })).ok).toBe(true)
    const seen = await inDb(
      url,
      async (c) =>
        (await c.query(`select run, count(*)::int as n, count(distinct request_id)::int as d from seen group by run order by run`)).rows,
    )
    // Exactly the 10 keys of the two committed batches in run 1, the other 20 in run 2.
    expect(seen).toEqual([
      { run: 1, n: 10, d: 10 },
      { run: 2, n: 20, d: 20 },
    ])
    expect(await state(url, 'probe')).toMatchObject({ state: 'done', rows_changed: '30' })
  })

  it('retries a batch that hits lock_timeout, and fails clearly once retries are exhausted', async () => {
    const url = await seeded('locks')
    const blocker = await openClient(url)
    try {
      await blocker.query('begin')
      await blocker.query(`select 1 from api_requests where request_id = $1 for update`, [req(5)])
      const noRetry = await runQuiet(url, { backfills: [systemHash], env: { HOOKS_LOCK_TIMEOUT_MS: '50', HOOKS_MAX_RETRIES: '0' } })
      expect(noRetry.ok).toBe(false)
      expect(noRetry.error).toMatch(/HOOKS_LOCK_TIMEOUT_MS/)
      expect(await state(url, 'system-hash')).toMatchObject({ state: 'failed' })
      expect((await inDb(url, owned)).get(req(5))!.system_hash).toBeNull()
      // Release the row while the next run is backing off: it then succeeds.
      setTimeout(() => void blocker.query('rollback'), 400)
      const retried = await runQuiet(url, { backfills: [systemHash], env: { HOOKS_LOCK_TIMEOUT_MS: '50', HOOKS_MAX_RETRIES: '8' } })
      expect(retried.ok, retried.error).toBe(true)
      expect((await inDb(url, owned)).get(req(5))!.system_hash).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await blocker.end()
    }
  })
})

describe('batch size', () => {
  /** A plain key walk that records, per batch, how many keys it got; each batch takes ≥ 20 ms. */
  const sizeProbe: Backfill = {
    name: 'size-probe',
    version: 1,
    description: 'test probe',
    tables: [],
    steps: [
      keyWalkStep('walk', async (ctx, after, upTo) => {
        const range = rangeFilter(after, upTo)
        await ctx.client.query(`select pg_sleep(0.02)`)
        const r = await ctx.client.query(
          `insert into public.batch_sizes (keys, first_key) select count(*), min(request_id::text) from public.api_requests where ${range.sql}`,
          range.params,
        )
        return { changed: r.rowCount ?? 0, skipped: 0 }
      }),
    ],
  }
  const sizesAfterRun = async (url: string, env: Record<string, string>) => {
    await inDb(url, (c) =>
      c.query(`drop table if exists public.batch_sizes; create table public.batch_sizes (n serial, keys int, first_key text)`),
    )
    expect((await runQuiet(url, { backfills: [sizeProbe], env })).ok).toBe(true)
    await inDb(url, (c) => c.query(`delete from migration_hooks.backfills where name = 'size-probe'`))
    return inDb(url, async (c) => (await c.query(`select keys from public.batch_sizes order by n`)).rows.map((r) => r.keys as number))
  }

  it('follows HOOKS_BATCH_TARGET_MS between the minimum and HOOKS_BATCH_SIZE, covering every key once', async () => {
    const url = await seeded('batch-size', someRows(100))
    // Batches of ≥ 20 ms against a 10 s target: from a quarter of the ceiling, +25 % per batch.
    expect(await sizesAfterRun(url, { HOOKS_BATCH_SIZE: '40', HOOKS_BATCH_TARGET_MS: '10000' })).toEqual([10, 13, 16, 20, 25, 16])
    // Against a 1 ms target: held at the minimum.
    expect(await sizesAfterRun(url, { HOOKS_BATCH_SIZE: '40', HOOKS_BATCH_TARGET_MS: '1' })).toEqual(Array(10).fill(MIN_BATCH_SIZE))
    // Target 0: the size stays HOOKS_BATCH_SIZE.
    expect(await sizesAfterRun(url, { HOOKS_BATCH_SIZE: '40', HOOKS_BATCH_TARGET_MS: '0' })).toEqual([40, 40, 20])
  })
})

describe('versions and selection', () => {
  it('a bumped version resets the ledger and re-runs; the same version does not', async () => {
    const url = await seeded('version')
    expect((await runQuiet(url, { backfills: [systemHash] })).ok).toBe(true)
    await inDb(url, (c) => c.query(`update api_requests set system_hash = null where request_id = $1`, [req(3)]))
    await runQuiet(url, { backfills: [systemHash] })
    expect((await inDb(url, owned)).get(req(3))!.system_hash).toBeNull()
    expect((await hookStatus(url, { backfills: [{ ...systemHash, version: 2 }], env: {} })).clean).toBe(false)
    const bumped = await runQuiet(url, { backfills: [{ ...systemHash, version: 2 }] })
    expect(bumped.summaries[0]).toMatchObject({ outcome: 'done', changed: 1 })
    expect((await inDb(url, owned)).get(req(3))!.system_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(await state(url, 'system-hash')).toMatchObject({ version: 2, state: 'done', rows_changed: '1' })
  })

  it('--only runs just the named backfills, and rejects unknown names', async () => {
    const url = await seeded('only')
    const r = await runQuiet(url, { only: ['system-hash'] })
    expect(r.summaries.map((s) => s.name)).toEqual(['system-hash'])
    const rows = await inDb(url, owned)
    expect(rows.get(req(3))!.system_hash).not.toBeNull()
    expect(rows.get(req(1))!.task_tool_invocation).toBeNull()
    expect(await state(url, 'task-invocations')).toBeUndefined()
    const bad = await runQuiet(url, { only: ['nope'] })
    expect(bad.ok).toBe(false)
    expect(bad.error).toMatch(/Unknown backfill "nope"/)
  })
})

describe('hookStatus', () => {
  it('is clean on a database without api_requests, pending before the first run, clean after', async () => {
    const empty = await createTestDatabases('status_empty')
    expect(await hookStatus(empty.databaseUrl, { env: {} })).toMatchObject({ clean: true })
    const url = await seeded('status')
    const before = await hookStatus(url, { env: {} })
    expect(before.clean).toBe(false)
    expect(before.lines.filter((l) => l.includes('pending (never run)'))).toHaveLength(BACKFILLS.length)
    expect(await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.backfills') as s`)).rows[0].s)).toBeNull()
    await runQuiet(url)
    expect((await hookStatus(url, { env: {} })).clean).toBe(true)
    await inDb(url, (c) => c.query(`update migration_hooks.backfills set state = 'running' where name = 'system-hash'`))
    expect((await hookStatus(url, { env: {} })).clean).toBe(false)
  })
})

describe('locking', () => {
  it('waits for another run, bounded by HOOKS_LOCK_WAIT_SECONDS', async () => {
    const url = await seeded('lock')
    const holder = await openClient(url)
    try {
      await holder.query('select pg_advisory_lock($1::bigint)', [HOOKS_LOCK_KEY])
      const blocked = await runQuiet(url, { env: { HOOKS_LOCK_WAIT_SECONDS: '1' } })
      expect(blocked.ok).toBe(false)
      expect(blocked.error).toMatch(/HOOKS_LOCK_WAIT_SECONDS/)
      expect(await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.backfills') as s`)).rows[0].s)).toBeNull()
      setTimeout(() => void holder.query('select pg_advisory_unlock($1::bigint)', [HOOKS_LOCK_KEY]), 500)
      const waited = await runQuiet(url, { env: { HOOKS_LOCK_WAIT_SECONDS: '30' } })
      expect(waited.ok).toBe(true)
      expect((await state(url, 'system-hash'))!.state).toBe('done')
    } finally {
      await holder.end()
    }
  })
})

describe('shadow and script mode', () => {
  it('a shadow run on empty tables completes every backfill', async () => {
    const url = await freshDatabase('shadow')
    const r = await runQuiet(url, { shadow: true })
    expect(r.ok).toBe(true)
    const entries = await inDb(url, async (c) => (await c.query(`select name, state from migration_hooks.backfills order by name`)).rows)
    expect(entries).toEqual(BACKFILLS.map((b) => ({ name: b.name, state: 'done' })).sort((a, b) => a.name.localeCompare(b.name)))
  })

  it('as graphile-migrate runs it: GM_DBURL and GM_SHADOW; deferred to the wrapper when asked', async () => {
    const url = await seeded('script')
    const deferred = await tsxScript('hooks/run.ts', [], { GM_DBURL: url, MIGRATION_HOOKS_DEFERRED: '1' })
    expect(deferred.exitCode).toBe(0)
    expect(deferred.stdout).toContain('hooks deferred to the db:migrate wrapper')
    expect(await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.backfills') as s`)).rows[0].s)).toBeNull()
    const real = await tsxScript('hooks/run.ts', [], { GM_DBURL: url, GM_SHADOW: '1' })
    expect(real.exitCode, real.all).toBe(0)
    expect((await state(url, 'system-hash'))!.state).toBe('done')
    expect((await inDb(url, owned)).get(req(3))!.system_hash).not.toBeNull()
  })

  it('exits non-zero with the password redacted when it cannot connect', async () => {
    const r = await tsxScript('hooks/run.ts', [], { GM_DBURL: 'postgres://someone:Sup3rSecretPw@127.0.0.1:1/nowhere' })
    expect(r.exitCode).not.toBe(0)
    expect(r.all).not.toContain('Sup3rSecretPw')
    expect(r.stderr).toMatch(/Migration hooks failed/)
  })
})

describe('GIN pending lists', () => {
  const pending = (url: string) =>
    inDb(url, async (c) => {
      await c.query('create extension if not exists pgstattuple')
      const { rows } = await c.query(
        `select i.relname as index, (pgstatginindex(i.oid)).pending_tuples::int as tuples
         from pg_class i join pg_am am on am.oid = i.relam
         where am.amname = 'gin' and i.relname like 'idx_%' order by 1`,
      )
      return rows as Array<{ index: string; tuples: number }>
    })

  it('are merged by the runner after its batches, not left for the application’s inserts', async () => {
    const url = await seeded('gin', someRows(40))
    const before = await pending(url)
    expect(before.map((r) => r.index)).toEqual(['idx_api_requests_response_body_gin', 'idx_requests_task_tool_invocation_gin'])
    // Inserting the rows filled the pending lists (fastupdate); the backfills' updates add to them.
    expect(before.some((r) => r.tuples > 0)).toBe(true)
    const r = await runQuiet(url, { env: { HOOKS_BATCH_SIZE: '7' } })
    expect(r.ok).toBe(true)
    expect(r.summaries.find((s) => s.name === 'system-hash')!.changed).toBeGreaterThan(0)
    expect(await pending(url)).toEqual(before.map((b) => ({ index: b.index, tuples: 0 })))
  })
})
