/**
 * Drill: an object planted in `public` by another role cannot hijack the backfills. The
 * classic case: an `=` operator for two varchars is an exact match, so on a search path that
 * includes public it beats the built-in text equality that train_id comparisons use. The hook
 * sessions put only pg_catalog on their path and name every application object with its
 * schema; every function the chain creates pins its own search_path.
 */
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { checksums, loadFixture, runDb } from '../helpers/drills.js'
import { uninterrupted } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000

describe('search_path', () => {
  it('an operator another role planted in public does not change what the backfills write', { timeout: TIMEOUT }, async () => {
    const reference = await uninterrupted(FIXTURE)
    const db = await createTestDatabases('planted')
    await loadFixture(db.databaseUrl, FIXTURE)
    expect((await runDb(['migrate', '--schema-only'], db.env)).exitCode).toBe(0)
    const planter = `planter_${Date.now()}`
    const asPlanter = new URL(db.databaseUrl)
    asPlanter.username = planter
    asPlanter.password = 'planted-pw'
    await withClient(db.databaseUrl, async (c) => {
      await c.query(`create role ${planter} login password 'planted-pw'`)
      await c.query(`grant create on schema public to ${planter}`)
    })
    try {
      await withClient(asPlanter.toString(), async (c) => {
        await c.query(`create function public.never_equal(varchar, varchar) returns boolean language sql immutable as 'select false'`)
        await c.query(`create operator public.= (leftarg = varchar, rightarg = varchar, function = public.never_equal)`)
      })
      // The operator really is the one an unqualified path with public would pick.
      const hijacked = await withClient(db.databaseUrl, (c) => c.query(`select 'a'::varchar = 'a'::varchar as same`))
      expect(hijacked.rows[0].same).toBe(false)

      const r = await runDb(['backfill'], db.env)
      expect(r.exitCode, r.all).toBe(0)
      await withClient(db.databaseUrl, async (c) => {
        await c.query(`drop operator public.= (varchar, varchar)`)
        await c.query(`drop function public.never_equal(varchar, varchar)`)
      })
      expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
    } finally {
      await withClient(db.databaseUrl, async (c) => {
        await c.query(`drop owned by ${pg.escapeIdentifier(planter)}`).catch(() => {})
        await c.query(`drop role if exists ${pg.escapeIdentifier(planter)}`).catch(() => {})
      })
    }
  })

  it('every function the chain creates pins its search_path', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('pinned')
    expect((await runDb(['migrate'], db.env)).exitCode).toBe(0)
    const { rows } = await withClient(db.databaseUrl, (c) =>
      c.query(
        `select p.oid::regprocedure::text as fn, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname in ('public', 'migration_hooks') order by 1`,
      ),
    )
    expect(rows.length).toBeGreaterThan(5)
    const unpinned = rows.filter((r) => !(r.proconfig ?? []).some((s: string) => s.startsWith('search_path=')))
    expect(unpinned.map((r) => r.fn)).toEqual([])
  })
})
