/**
 * Legacy databases that went through pg_dump and a restore — the usual way production copies
 * move — converge too: the restore spells some definitions differently (a check constraint's
 * ANY (ARRAY[…])), and the chain rebuilds what differs. Afterwards the catalog equals the
 * fresh build, db:drift exits 0, and every row and value is the one a database adopted
 * without the round trip has.
 */
import { describe, expect, it } from 'vitest'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { checksums, loadFixture, runDb } from '../helpers/drills.js'
import { copyByPlainDump } from '../helpers/pg-copy.js'
import { uninterrupted } from '../drills/support.js'

const TIMEOUT = 600_000

describe.each(['script-chain.sql', 'docker-init.sql'])('a dump-restored %s database', (fixture) => {
  it('converges on the fresh build, drift-free, with every row and value kept', { timeout: TIMEOUT }, async () => {
    const source = await createTestDatabases('dump_source')
    await loadFixture(source.databaseUrl, fixture)
    const restored = await createTestDatabases('dump_restored')
    copyByPlainDump(source.databaseUrl, restored.databaseUrl, ['--no-owner', '--no-privileges'])
    // The round trip really changed how the role check reads.
    const roleCheck = await withClient(restored.databaseUrl, (c) =>
      c.query(`select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'train_members_role_check'`),
    )
    expect(roleCheck.rows).toHaveLength(1)
    expect(roleCheck.rows[0].def).toMatch(/ARRAY\[\('owner'::character varying\)::text/)

    const migrate = await runDb(['migrate'], restored.env)
    expect(migrate.exitCode, migrate.all).toBe(0)
    expect(await catalogOf(restored.databaseUrl)).toBe(committedSnapshot())
    const drift = await runDb(['drift'], restored.env)
    expect(drift.exitCode, drift.all).toBe(0)
    const reference = await uninterrupted(fixture)
    expect(await checksums(restored.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
  })
})
