/**
 * How a row pass begins, and which rows its final pass looks at again (row-pass/state.ts,
 * row-pass/sql.ts), checked on the catalog and the rows themselves:
 *  - the final pass's candidates are exactly the rows written after the walk began, even
 *    while a transaction older than the walk is open (a long report, a pg_dump);
 *  - a pass is recorded together with its chunks, or not at all.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { openClient } from '../../lib/connection.js'
import { systemHash } from '../../hooks/backfills/system-hash.js'
import { catchUpRead, type Participant } from '../../hooks/runner/row-pass/sql.js'
import {
  beginPass,
  CHUNK_TABLE,
  ensureStateTables,
  heapPages,
  MAX_PASS_TRANSACTIONS,
  PASS_TABLE,
  transactionsSince,
} from '../../hooks/runner/row-pass/state.js'
import { ensureLedger } from '../../hooks/runner/ledger.js'
import { firstRequest, insertRows, req } from './support/fixtures.js'
import { freshDatabase, inDb } from './support/template-databases.js'

const participants: Participant[] = [{ name: systemHash.name, rule: systemHash.row!, input: null }]
const members = [{ name: systemHash.name, version: systemHash.version, configKey: null }]
const rows = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    id: req(from + i),
    ts: new Date(Date.UTC(2025, 0, 1, 10, 0, from + i)).toISOString(),
    body: firstRequest(`q${from + i}`, `System ${from + i}`),
  }))

/** The request ids the final pass would read, over the whole heap. */
async function candidates(url: string, snapshot: string): Promise<string[]> {
  return inDb(url, async (c) => {
    const { sql, params } = catchUpRead(participants)
    const found = await c.query(sql, [0, await heapPages(c), snapshot, ...params])
    return found.rows.map((r) => r.id).sort()
  })
}

describe('the row pass begins', () => {
  it('with a snapshot: rows written before it are not final-pass candidates, even under an older open transaction', async () => {
    const url = await freshDatabase('pass_start_snapshot')
    // A transaction with an id, open before every row was written, which then writes a row of
    // its own and commits only after the pass has begun.
    const old = await openClient(url)
    onTestFinished(() => old.end())
    await old.query('begin')
    await old.query('select pg_current_xact_id()')
    await inDb(url, (c) => insertRows(c, rows(1, 6)))
    await insertRows(old, rows(7, 7))

    const pass = await inDb(url, async (c) => {
      await ensureLedger(c)
      await ensureStateTables(c)
      return beginPass(c, members, new Date().toISOString(), false)
    })
    // The application updates one pre-existing row after the walk began; the old transaction commits.
    await inDb(url, (c) => c.query(`update api_requests set model = 'moved' where request_id = $1`, [req(2)]))
    await old.query('commit')

    // Compared with the oldest running transaction alone, all seven rows would be candidates.
    expect(await candidates(url, pass.startSnapshot)).toEqual([req(2), req(7)])
    // Rows added after the size was read are on pages beyond the chunks; the final pass reads those too.
    expect(pass.totalPages).toBeGreaterThan(0)
  })

  it('counts the transactions since it began (a pass older than about a billion is begun again)', async () => {
    const url = await freshDatabase('pass_start_age')
    await inDb(url, async (c) => {
      await ensureLedger(c)
      await ensureStateTables(c)
      const pass = await beginPass(c, members, new Date().toISOString(), false)
      // Transaction ids are the server's: other databases' sessions use them up too.
      const before = await transactionsSince(c, pass)
      expect(before).toBeGreaterThanOrEqual(0)
      for (let i = 0; i < 5; i++) await c.query('select pg_current_xact_id()')
      const since = await transactionsSince(c, pass)
      expect(since - before).toBeGreaterThanOrEqual(5)
      expect(since).toBeLessThan(MAX_PASS_TRANSACTIONS)
    })
  })

  it('is recorded with its chunks, or not at all', async () => {
    const url = await freshDatabase('pass_start_atomic')
    await inDb(url, (c) => insertRows(c, rows(1, 3)))
    await inDb(url, async (c) => {
      await ensureLedger(c)
      await ensureStateTables(c)
      // The chunks' insert fails (as a connection lost at that moment would end it).
      await c.query(`create function public.refuse_chunks() returns trigger language plpgsql as $$
        begin raise exception 'no chunks today'; end $$`)
      await c.query(`create trigger refuse before insert on ${CHUNK_TABLE} for each statement execute function public.refuse_chunks()`)
      await expect(beginPass(c, members, new Date().toISOString(), false)).rejects.toThrow(/no chunks today/)
      expect((await c.query(`select count(*)::int as n from ${PASS_TABLE}`)).rows[0].n).toBe(0)
      await c.query(`drop trigger refuse on ${CHUNK_TABLE}`)
      await beginPass(c, members, new Date().toISOString(), false)
      expect((await c.query(`select count(*)::int as n from ${PASS_TABLE}`)).rows[0].n).toBe(1)
      expect((await c.query(`select count(*)::int as n from ${CHUNK_TABLE}`)).rows[0].n).toBeGreaterThan(0)
    })
  })
})

describe('a pass recorded by an older layout of the state tables', () => {
  it('is begun again in the current layout', async () => {
    const url = await freshDatabase('pass_old_layout')
    await inDb(url, async (c) => {
      await ensureLedger(c)
      await c.query(`create table ${PASS_TABLE} (id integer primary key, members jsonb not null, xmin_threshold xid8 not null)`)
      await c.query(`insert into ${PASS_TABLE} values (1, '[]', '1')`)
      await ensureStateTables(c)
      const columns = await c.query(`select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped`, [
        PASS_TABLE,
      ])
      expect(columns.rows.map((r) => r.attname)).toContain('start_snapshot')
      expect((await c.query(`select count(*)::int as n from ${PASS_TABLE}`)).rows[0].n).toBe(0)
    })
  })
})
