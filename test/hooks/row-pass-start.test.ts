/**
 * How a row pass begins, and which rows its final pass looks at again (row-pass/state.ts,
 * row-pass/sql.ts), checked on the catalog and the rows themselves:
 *  - the final pass's candidates: every pending row an open transaction may still have been
 *    writing when the walk began (savepoints included), never the pass's own writes;
 *  - a pass is recorded together with its chunks, or not at all.
 */
import type { RowRule } from '../../hooks/runner/row-rule.js'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openClient } from '../../lib/connection.js'
import { systemHash } from '../../hooks/backfills/system-hash.js'
import { catchUpRead, type Participant } from '../../hooks/runner/row-pass/sql.js'
import {
  beginPass,
  CHUNK_TABLE,
  ensureStateTables,
  heapPages,
  ownTransactions,
  MAX_PASS_TRANSACTIONS,
  PASS_TABLE,
  type PassState,
  readPass,
  recordOwnWrite,
  transactionsSince,
} from '../../hooks/runner/row-pass/state.js'
import { ensureLedger } from '../../hooks/runner/ledger.js'
import { firstRequest, insertRows, req } from './support/fixtures.js'
import { freshDatabase, inDb } from './support/template-databases.js'

const participants: Participant[] = [{ name: systemHash.name, rule: systemHash.row as RowRule, input: null }]
const members = [{ name: systemHash.name, version: systemHash.version, configKey: null }]
const rows = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    id: req(from + i),
    ts: new Date(Date.UTC(2025, 0, 1, 10, 0, from + i)).toISOString(),
    body: firstRequest(`q${from + i}`, `System ${from + i}`),
  }))

/** The request ids the final pass would read, over the whole heap. */
async function candidates(url: string, pass: PassState): Promise<string[]> {
  return inDb(url, async (c) => {
    const { sql, params } = catchUpRead(participants)
    const found = await c.query(sql, [0, await heapPages(c), pass.startSnapshot, await ownTransactions(c), ...params])
    return found.rows.map((r) => r.id).sort()
  })
}

describe('the row pass begins', () => {
  it("the final pass's candidates: pending rows written since the oldest transaction open at the start, savepoints included, not its own", async () => {
    const url = await freshDatabase('pass_start_candidates')
    // A transaction with an id, open before every row was written, which then writes a row of
    // its own, one more in a savepoint (a subtransaction's id, which the snapshot's list of
    // running transactions leaves out), and commits only after the pass has begun.
    const old = await openClient(url)
    onTestFinished(() => old.end())
    await old.query('begin')
    await old.query('select pg_current_xact_id()')
    await inDb(url, async (c) => {
      await insertRows(c, rows(1, 6))
      await c.query(`update api_requests set system_hash = 'done' where request_id = $1`, [req(3)]) // not pending
    })
    await insertRows(old, rows(7, 7))
    await old.query('savepoint s')
    await insertRows(old, rows(8, 8))
    await old.query('release savepoint s')

    const pass = await inDb(url, async (c) => {
      await ensureLedger(c)
      await ensureStateTables(c)
      return beginPass(c, members, new Date().toISOString(), false)
    })
    await inDb(url, async (c) => {
      // The application updates a pre-existing row after the walk began…
      await c.query(`update api_requests set model = 'moved' where request_id = $1`, [req(2)])
      // …and the pass itself writes another (its transaction id recorded, as every batch's).
      await c.query('begin')
      await c.query(`update api_requests set model = 'ours' where request_id = $1`, [req(4)])
      await recordOwnWrite(c)
      await c.query('commit')
    })
    await old.query('commit')

    expect(await candidates(url, pass)).toEqual([1, 2, 5, 6, 7, 8].map(req))
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
      // Read by db:status before any run upgrades it: no pass, no error.
      expect(await readPass(c)).toBeNull()
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
