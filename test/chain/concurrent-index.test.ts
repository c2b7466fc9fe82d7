/**
 * The documented way to index a big table without blocking writes: a `--! no-transaction`
 * migration with one `create index concurrently if not exists`, plus the INVALID-index repair
 * that runs before pending migrations — graphile-migrate's beforeAllMigrations action, or
 * `db:migrate` itself in-process — so that an interrupted build's leftover is built anew
 * instead of being skipped by `if not exists`.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { nextMigrationNumber } from '../helpers/drills.js'
import { graphileMigrate, projectCopy, tsxScript } from '../helpers/project.js'

const NEXT = nextMigrationNumber()

const INDEX = 'idx_api_requests_errors_by_time'
const MIGRATION = `--! no-transaction
-- Index failed requests by time without blocking the proxy's writes.
create index concurrently if not exists ${INDEX} on public.api_requests ("timestamp") where error is not null;
`

/** Leave an INVALID index named INDEX, exactly like an interrupted deploy would. */
async function leaveInvalidIndex(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (c) => {
    // A concurrent unique build that fails on duplicate rows keeps its half-built index.
    await c.query(`insert into api_requests (request_id, "timestamp", train_id, method, path, error)
                   select gen_random_uuid(), now(), 'dup', 'POST', '/v1/messages', 'boom' from generate_series(1, 3)`)
    await expect(c.query(`create unique index concurrently ${INDEX} on api_requests (train_id) where error is not null`)).rejects.toThrow(
      /could not create unique index/,
    )
    const { rows } = await c.query(`select indisvalid from pg_index where indexrelid = to_regclass($1)`, [INDEX])
    expect(rows).toEqual([{ indisvalid: false }])
  })
}

/** The index is the migration's (valid, not unique, that definition) and the new migration is recorded. */
async function expectBuiltByMigration(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (c) => {
    const { rows } = await c.query(
      `select i.indisvalid, i.indisunique, pg_get_indexdef(i.indexrelid) as def from pg_index i where i.indexrelid = to_regclass($1)`,
      [INDEX],
    )
    expect(rows).toHaveLength(1)
    expect(rows[0].indisvalid).toBe(true)
    expect(rows[0].indisunique).toBe(false)
    expect(rows[0].def).toBe(`CREATE INDEX ${INDEX} ON public.api_requests USING btree ("timestamp") WHERE (error IS NOT NULL)`)
    const applied = await c.query(`select count(*)::int as n from graphile_migrate.migrations where filename = $1`, [`${NEXT}.sql`])
    expect(applied.rows[0].n).toBe(1)
  })
}

describe('concurrent index builds', () => {
  it('graphile-migrate: a pending concurrent build replaces an INVALID leftover with a valid index', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('cic')
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)
    await leaveInvalidIndex(db.databaseUrl)

    writeFileSync(join(dir, 'migrations', 'current.sql'), MIGRATION)
    const commit = await graphileMigrate(['commit', '--message', 'index errors by time'], db.env, dir)
    expect(commit.exitCode, commit.all).toBe(0)
    await expectBuiltByMigration(db.databaseUrl)
  })

  it('db:migrate (repair in-process, the .gmrc action deferred) does the same', async () => {
    const dir = projectCopy()
    // Commit the index migration against one database …
    const author = await createTestDatabases('cic_author')
    writeFileSync(join(dir, 'migrations', 'current.sql'), MIGRATION)
    const commit = await graphileMigrate(['commit', '--message', 'index errors by time'], author.env, dir)
    expect(commit.exitCode, commit.all).toBe(0)

    // … and deploy it to another that holds the INVALID leftover.
    const db = await createTestDatabases('cic_deploy')
    expect((await graphileMigrate(['migrate'], { ...db.env, MIGRATION_HOOKS_DEFERRED: '1' })).exitCode).toBe(0)
    await leaveInvalidIndex(db.databaseUrl)
    const deploy = await tsxScript('scripts/cli/db.ts', ['migrate'], db.env, dir)
    expect(deploy.exitCode, deploy.all).toBe(0)
    expect(deploy.stdout).toContain(NEXT)
    await expectBuiltByMigration(db.databaseUrl)
  })
})
