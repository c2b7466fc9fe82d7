/**
 * The committed chain passes its own trace. Each migration is traced on every legacy fixture
 * (the real end states and the partial ones) with rows in the hot tables, as on adoption, then applied, and the next one traced on the
 * result. The chain's brief locks (add_missing_columns' catalog-only ALTER TABLE, constraints
 * added NOT VALID) pass by the trace's rules, not by a list of files here.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { HOT_TABLES } from '../../lib/hot-tables.js'
import { relationExists } from '../../lib/catalog-probe.js'
import type { Trace } from '../../scripts/trace/trace.js'
import { traceMigrationText } from '../../scripts/trace/trace-file.js'
import { readCommittedChain } from '../../scripts/verify/chain.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { PROJECT_ROOT } from '../helpers/project.js'

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'legacy')
const ROWS = 300

/** Rows in whatever shape the legacy database's hot tables have (`domain` before legacy 012). */
async function insertRows(c: pg.ClientBase): Promise<void> {
  const { rows } = await c.query(
    `select column_name from information_schema.columns where table_schema = 'public' and table_name = 'api_requests'`,
  )
  const train = rows.some((r) => r.column_name === 'train_id') ? 'train_id' : 'domain'
  await c.query(`
    insert into public.api_requests (request_id, ${train}, method, path, "timestamp", headers, body, response_body)
    select ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'trace-chain', 'POST', '/v1/messages', now() - g * interval '1 minute',
           '{}'::jsonb,
           jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'q' || g))),
           jsonb_build_object('content', jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'a' || g)))
      from generate_series(1, ${ROWS}) g`)
  if (await relationExists(c, 'public.streaming_chunks'))
    await c.query(`
      insert into public.streaming_chunks (request_id, chunk_index, "timestamp", data)
      select ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 0, now(), 'chunk ' || g from generate_series(1, ${ROWS}) g`)
}

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.sql'))
  .sort()

describe.each(fixtures)('the committed chain traced on %s with rows', (fixture) => {
  it('takes no lock that stalls the proxy, rewrites nothing, builds no index in place, updates no rows of a hot table', async () => {
    const db = await createTestDatabases('trace_chain')
    const traces: { file: string; trace: Trace }[] = []
    const stalls: string[] = []
    await withClient(db.databaseUrl, async (c) => {
      await c.query(readFileSync(join(FIXTURES, fixture), 'utf8'))
      await insertRows(c)
      const rowsBefore = (await c.query(`select count(*)::int as n from public.api_requests`)).rows[0].n
      expect(rowsBefore).toBeGreaterThanOrEqual(ROWS)
      for (const m of readCommittedChain(join(PROJECT_ROOT, 'migrations'))) {
        const { trace, verdict } = await traceMigrationText(c, m.body, m.filename)
        expect(trace.error, `${m.filename}: ${trace.error}`).toBeUndefined()
        traces.push({ file: m.filename, trace })
        for (const s of verdict.stalls) stalls.push(`${m.filename}: ${s.table} ${s.check} (${s.what})`)
        // Then apply it for real, as graphile-migrate would (in one transaction unless
        // --! no-transaction), and trace the next on the result.
        const inTransaction = !/^--! no-transaction/.test(m.body)
        if (inTransaction) await c.query(`begin; select set_config('search_path', 'public', true)`)
        await c.query(m.body)
        if (inTransaction) await c.query('commit')
      }
      const { rows } = await c.query(`select count(*)::int as n from public.api_requests`)
      expect(rows[0].n).toBe(rowsBefore)
    })
    expect(stalls).toEqual([])

    // The trace did see the chain's work on the hot tables, inside its functions and do blocks:
    // brief ACCESS EXCLUSIVE locks (passed by rule) and index builds queued for the online step.
    const hot = traces.flatMap(({ trace }) => trace.tables.filter((t) => HOT_TABLES.some((h) => h === t.table)))
    expect(hot.some((t) => t.lock === 'AccessExclusiveLock')).toBe(true)
    expect(traces.some(({ trace }) => trace.queued.some((q) => /concurrently/.test(q.statement)))).toBe(true)
  })
})
