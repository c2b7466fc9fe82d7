/**
 * A database the chain built, copied the way backups and new servers are made —
 * `pg_dump -Fc` then `pg_restore` — is still the chain's schema: every definition (constraints,
 * indexes, views, materialized views, functions, triggers, column defaults) deparses the same
 * in the copy, so db:verify and db:drift pass on it, db:migrate has nothing to do, and the
 * application's writes work. A definition that PostgreSQL spells differently once re-parsed
 * would leave every restored copy drifting for good: nothing pending would rebuild it.
 */
import { describe, expect, it } from 'vitest'
import { catalogOf } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { appliedMigrations, checksums, runDb } from '../helpers/drills.js'
import { copyByCustomDump } from '../helpers/pg-copy.js'

const TIMEOUT = 600_000

/** The definitions of the tools' own schema (renderSchema covers the application's). */
async function toolDefinitions(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ def: string }>(
      `select format('%s %s: %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid)) as def
         from pg_constraint k join pg_namespace n on n.oid = k.connamespace where n.nspname = 'migration_hooks'
       union all
       select pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indexrelid
         join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'migration_hooks'
       union all
       select pg_get_functiondef(p.oid) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'migration_hooks' and p.prokind in ('f', 'p')
       union all
       select format('%s.%s default %s', a.attrelid::regclass, a.attname, pg_get_expr(d.adbin, d.adrelid))
         from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
         join pg_class c on c.oid = d.adrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'migration_hooks'
       order by 1`,
    )
    return rows.map((r) => r.def)
  })
}

describe('a chain-built database restored from pg_dump -Fc', () => {
  it('keeps every definition, passes db:verify and db:drift, needs no migration, and takes the application’s writes', {
    timeout: TIMEOUT,
  }, async () => {
    const source = await createTestDatabases('round_trip_source')
    const built = await runDb(['migrate'], source.env)
    expect(built.exitCode, built.all).toBe(0)
    const copy = await createTestDatabases('round_trip_copy')
    copyByCustomDump(source.databaseUrl, copy.databaseUrl)

    expect(await catalogOf(copy.databaseUrl)).toBe(await catalogOf(source.databaseUrl))
    expect(await toolDefinitions(copy.databaseUrl)).toEqual(await toolDefinitions(source.databaseUrl))

    const verify = await runDb(['verify'], copy.env)
    expect(verify.exitCode, verify.all).toBe(0)
    const drift = await runDb(['drift'], copy.env)
    expect(drift.exitCode, drift.all).toBe(0)
    const before = { catalog: await catalogOf(copy.databaseUrl), rows: await checksums(copy.databaseUrl) }
    const applied = await appliedMigrations(copy.databaseUrl)
    const again = await runDb(['migrate'], copy.env)
    expect(again.exitCode, again.all).toBe(0)
    expect(await appliedMigrations(copy.databaseUrl)).toEqual(applied)
    expect({ catalog: await catalogOf(copy.databaseUrl), rows: await checksums(copy.databaseUrl) }).toEqual(before)

    // The application's writes, on the copy: a train, its owner and a member, a request.
    await withClient(copy.databaseUrl, async (c) => {
      const { rows } = await c.query(`insert into trains (train_id, name) values ('train-restored', 'Restored') returning id`)
      const member = (email: string, role: string) =>
        c.query(`insert into train_members (train_id, user_email, role, added_by) values ($1, $2, $3, 'drill')`, [rows[0].id, email, role])
      await member('a@example.com', 'owner')
      await member('b@example.com', 'member')
      await c.query(
        `insert into api_requests (request_id, train_id, timestamp, method, path) values (gen_random_uuid(), 'train-restored', now(), 'POST', '/v1/messages')`,
      )
      await expect(member('c@example.com', 'admin')).rejects.toThrow(/train_members_role_check/)
    })
  })
})
