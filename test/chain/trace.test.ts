/**
 * The migration trace (scripts/trace): what a migration does to the hot tables, seen on the
 * server — inside do blocks and execute strings too — and db:commit's refusal of what would
 * stall the proxy. One scratch database (the chain and the sample rows on a shadow) serves
 * the in-process tests; every trace is rolled back, which the tests check as well.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { graphileMigrate, projectCopy, PROJECT_ROOT, tsxScript } from '../helpers/project.js'
import { buildScratchDatabase, scratchIsCurrent } from '../../scripts/trace/scratch-database.js'
import { SAMPLE_ROWS } from '../../scripts/trace/sample.js'
import { MIGRATION_SETTINGS, traceOnScratch } from '../../scripts/trace/trace-file.js'
import { parseWaivers } from '../../scripts/trace/waivers.js'

/** The three examples, and a plain index build. */
const ALTER_TYPE_IN_DO = `do $$ begin
  execute 'alter table public.api_requests alter column first_token_ms type bigint';
end $$;`
const UPDATE_ALL = `update public.api_requests set model = 'renamed';`
const CHECK_IN_DO = `do $$ begin
  alter table public.api_requests add constraint chk_tokens_positive check (input_tokens >= 0);
end $$;`
const PLAIN_INDEX = `create index idx_chunks_data on public.streaming_chunks (data);`

let shadowUrl: string

/** What the tests look at to see that a trace left nothing behind. */
const scratchState = () =>
  withClient(shadowUrl, async (c) => {
    const { rows } = await c.query(`
      select (select format_type(atttypid, atttypmod) from pg_attribute
               where attrelid = 'public.api_requests'::regclass and attname = 'first_token_ms') as first_token_type,
             (select count(*)::int from public.api_requests where train_id like 'trace-train-%') as sample_rows,
             (select count(*)::int from public.api_requests where model like 'claude-sample-%') as sample_models,
             to_regclass('public.idx_chunks_data') is not null as plain_index,
             exists (select 1 from pg_constraint where conname = 'chk_tokens_positive') as check_added,
             (select relfilenode::text from pg_class where oid = 'public.api_requests'::regclass) as filenode`)
    return rows[0]
  })

beforeAll(async () => {
  const db = await createTestDatabases('trace')
  await buildScratchDatabase({ ...db, embedded: false }, PROJECT_ROOT, 'trace test')
  shadowUrl = db.shadowUrl
})

describe('the trace sees what the server does', () => {
  it('refuses each of the issue examples with its own check, lock and fix, and rolls every one back', async () => {
    const before = await scratchState()
    expect(before.sample_rows).toBe(SAMPLE_ROWS)

    const rewrite = await traceOnScratch(shadowUrl, ALTER_TYPE_IN_DO, 'alter-type.sql')
    const requests = rewrite.trace.tables.find((t) => t.table === 'public.api_requests')!
    expect(requests).toMatchObject({ hot: true, lock: 'AccessExclusiveLock', rewritten: true })
    expect(rewrite.verdict.stalls.map((s) => [s.table, s.check, s.blocks])).toEqual([
      ['public.api_requests', 'rewrite', 'reads and writes'],
    ])

    const update = await traceOnScratch(shadowUrl, UPDATE_ALL, 'update.sql')
    expect(update.trace.tables.find((t) => t.table === 'public.api_requests')).toMatchObject({
      lock: 'RowExclusiveLock',
      rowsUpdated: SAMPLE_ROWS,
    })
    // It reads the whole table too (under a lock the proxy does not wait for): both are named.
    expect(update.verdict.stalls.map((s) => s.check)).toEqual(['scan', 'row-updates'])

    const check = await traceOnScratch(shadowUrl, CHECK_IN_DO, 'check.sql')
    expect(check.verdict.stalls.map((s) => [s.check, s.lock])).toEqual([['scan-under-lock', 'ACCESS EXCLUSIVE']])
    expect(check.trace.tables.find((t) => t.table === 'public.api_requests')!.rowsRead).toBeGreaterThanOrEqual(SAMPLE_ROWS)

    const index = await traceOnScratch(shadowUrl, PLAIN_INDEX, 'index.sql')
    const chunks = index.trace.tables.find((t) => t.table === 'public.streaming_chunks')!
    // The new index's own ACCESS EXCLUSIVE lock is invisible to others; the table's SHARE lock is what the proxy meets.
    expect(chunks).toMatchObject({ lock: 'ShareLock', indexesBuilt: ['public.idx_chunks_data'] })
    expect(index.verdict.stalls.map((s) => [s.check, s.blocks])).toEqual([['index-build', 'writes']])
    expect(index.lines.join('\n')).toMatch(/fix: build it with migration_hooks\.ensure_index/)

    expect(await scratchState()).toEqual(before)
  })

  it("passes the chain's own kind of change (brief catalog locks, queued builds, NOT VALID checks) and reports it", async () => {
    const sql = `select migration_hooks.add_missing_columns('public.api_requests', array['trace_note text']);
select migration_hooks.ensure_index('idx_api_requests_trace_note', 'public.api_requests', '(trace_note)');
select migration_hooks.ensure_check('public.api_requests', 'chk_trace_note_short', 'length(trace_note) < 100');
update public.api_requests set model = 'one row' where request_id = '00000000-0000-4000-8000-000000000001';`
    const result = await traceOnScratch(shadowUrl, sql, 'brief.sql')
    expect(result.trace.error).toBeUndefined()
    expect(result.verdict.stalls).toEqual([])
    const requests = result.trace.tables.find((t) => t.table === 'public.api_requests')!
    expect(requests).toMatchObject({ lock: 'AccessExclusiveLock', rewritten: false, indexesBuilt: [], rowsUpdated: 1 })
    expect(result.trace.queued.map((q) => q.statement)).toEqual([
      'create index concurrently if not exists idx_api_requests_trace_note on public.api_requests (trace_note)',
    ])
    expect(result.trace.notValid).toEqual(['public.api_requests chk_trace_note_short'])
    const columns = await withClient(shadowUrl, (c) =>
      c.query(`select 1 from pg_attribute where attrelid = 'public.api_requests'::regclass and attname = 'trace_note'`),
    )
    expect(columns.rowCount).toBe(0)
  })

  it('sees through renames, drops and WHEREs the sample barely matches', async () => {
    const renamed = await traceOnScratch(
      shadowUrl,
      `alter table public.api_requests rename to requests_old;\nalter table public.requests_old alter column first_token_ms type bigint;`,
      'rename.sql',
    )
    expect(renamed.verdict.stalls.map((s) => [s.table, s.check])).toEqual([['public.requests_old', 'rewrite']])
    const dropped = await traceOnScratch(shadowUrl, 'drop table public.streaming_chunks;', 'drop.sql')
    expect(dropped.verdict.stalls.map((s) => [s.table, s.check])).toEqual([['public.streaming_chunks', 'drop']])
    // Deletes no sample row, but reads the whole table to find out: on production, hours and maybe millions of rows.
    // (A column without an index: on "timestamp" the planner may take its index once the
    // sample is analysed, and then reads nothing — the check would depend on autovacuum.)
    const old = await traceOnScratch(shadowUrl, `delete from public.api_requests where first_token_ms < 0;`, 'old.sql')
    expect(old.verdict.stalls.map((s) => s.check)).toEqual(['scan'])
    expect(await withClient(shadowUrl, (c) => c.query(`select to_regclass('public.streaming_chunks') is not null as ok`))).toMatchObject({
      rows: [{ ok: true }],
    })
  })

  it('a --! no-transaction file may hold one CONCURRENTLY index statement, checked by its text', async () => {
    const ok = await traceOnScratch(
      shadowUrl,
      '--! no-transaction\ncreate index concurrently if not exists idx_x on public.api_requests (model);\n',
      'nt.sql',
    )
    expect(ok.trace.concurrent).toMatch(/^create index concurrently/)
    expect(ok.verdict.stalls).toEqual([])
    await expect(
      traceOnScratch(shadowUrl, '--! no-transaction\nupdate public.api_requests set model = null;\n', 'nt2.sql'),
    ).rejects.toThrow(/nt2\.sql is a --! no-transaction migration.*one CONCURRENTLY index statement/)
    // Not on the first line: graphile-migrate runs it in a transaction, and so is it traced.
    const later = await traceOnScratch(shadowUrl, '-- note\n--! no-transaction\nupdate public.api_requests set model = null;\n', 'nt3.sql')
    expect(later.verdict.stalls.map((s) => s.check)).toEqual(['scan', 'row-updates'])
  })

  it('uses the session settings graphile-migrate uses (.gmrc pgSettings)', async () => {
    const { getSettings } = await import('graphile-migrate/dist/commands/_common.js')
    const settings = await getSettings({ configFile: join(PROJECT_ROOT, '.gmrc') })
    expect(MIGRATION_SETTINGS).toEqual(settings.pgSettings)
  })

  it('a waiver in the file lets its one check through and is reported; a malformed waiver is refused', async () => {
    const waived = [
      '-- trace-waiver: api_requests scan: reads the table once, a bounded data fix',
      '-- trace-waiver: api_requests row-updates: renames the sample model, a bounded data fix',
      UPDATE_ALL,
    ].join('\n')
    const result = await traceOnScratch(shadowUrl, waived, 'waived.sql')
    expect(result.verdict.stalls).toEqual([])
    expect(result.verdict.waived.map((w) => [w.table, w.check, w.reason])).toEqual([
      ['public.api_requests', 'scan', 'reads the table once, a bounded data fix'],
      ['public.api_requests', 'row-updates', 'renames the sample model, a bounded data fix'],
    ])
    // The waiver covers that check only.
    const other = await traceOnScratch(
      shadowUrl,
      `-- trace-waiver: api_requests row-updates: not for rewrites at all\n${ALTER_TYPE_IN_DO}`,
      'x.sql',
    )
    expect(other.verdict.stalls.map((s) => s.check)).toEqual(['rewrite'])
    expect(other.verdict.unused.map((w) => [w.check, w.line])).toEqual([['row-updates', 1]])
    expect(other.lines.join('\n')).toMatch(/waiver on line 1 waives nothing here/)

    expect(() => parseWaivers('-- trace-waiver: conversation_analyses rewrite: small table', 'a.sql')).toThrow(
      /a\.sql:1: "conversation_analyses" is not a hot table/,
    )
    expect(() => parseWaivers('\n-- trace-waiver: api_requests rewrites: typo in the check', 'b.sql')).toThrow(
      /b\.sql:2: unknown check "rewrites"/,
    )
    expect(() => parseWaivers('-- trace-waiver: api_requests rewrite: ok', 'c.sql')).toThrow(/c\.sql:1: the waiver needs its reason/)
  })
})

describe('a traced COMMIT', () => {
  it('is reported, and marks the scratch database for a rebuild before the next trace', async () => {
    expect(await scratchIsCurrent(shadowUrl, PROJECT_ROOT)).toBe(true)
    const result = await traceOnScratch(shadowUrl, 'create table public.trace_committed (id int);\ncommit;', 'commit.sql')
    expect(result.trace.error).toMatch(/ended its own transaction/)
    expect(await scratchIsCurrent(shadowUrl, PROJECT_ROOT)).toBe(false)
  })
})

describe('db:commit and db:trace', () => {
  it('db:commit refuses a migration that would stall the proxy, with nothing committed; a harmless one commits', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('trace_commit')
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)
    const committed = () => readdirSync(join(dir, 'migrations', 'committed')).sort()
    const chain = committed()
    const current = join(dir, 'migrations', 'current.sql')
    writeFileSync(current, `${ALTER_TYPE_IN_DO}\n`)

    const refused = await tsxScript('scripts/cli/db.ts', ['commit', '--message', 'widen first token'], db.env, dir)
    expect(refused.exitCode, refused.all).toBe(1)
    expect(refused.all).toMatch(/STALL public\.api_requests rewrite: .* lock ACCESS EXCLUSIVE blocks the proxy's reads and writes/)
    expect(refused.all).toMatch(/Not committed/)
    expect(committed()).toEqual(chain)
    expect(readFileSync(current, 'utf8')).toBe(`${ALTER_TYPE_IN_DO}\n`)

    const traced = await tsxScript('scripts/cli/db.ts', ['trace'], db.env, dir)
    expect(traced.exitCode).toBe(1)

    writeFileSync(current, 'create table if not exists public.trace_widgets (id int primary key);\n')
    const ok = await tsxScript('scripts/cli/db.ts', ['commit', '--message', 'trace widgets'], db.env, dir)
    expect(ok.exitCode, ok.all).toBe(0)
    expect(committed()).toHaveLength(chain.length + 1)
  })
})
