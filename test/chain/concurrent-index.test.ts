/**
 * The documented way to index a big table without blocking writes: a `--! no-transaction`
 * migration with one `create index concurrently if not exists`, plus the beforeAllMigrations
 * action that drops an INVALID leftover of an interrupted build so the index is built anew.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { graphileMigrate, projectCopy } from '../helpers/project.js'

const INDEX = 'idx_api_requests_errors_by_time'
const MIGRATION = `--! no-transaction
-- Index failed requests by time without blocking the proxy's writes.
create index concurrently if not exists ${INDEX} on public.api_requests ("timestamp") where error is not null;
`

describe('concurrent index builds', () => {
  it('a pending concurrent build replaces an INVALID leftover with a valid index', async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('cic')
    expect((await graphileMigrate(['migrate'], db.env, dir)).exitCode).toBe(0)

    // Leave an INVALID index of that name on purpose: a concurrent unique build that fails
    // on duplicate rows keeps its half-built index, exactly like an interrupted deploy.
    await withClient(db.databaseUrl, async (c) => {
      await c.query(`insert into api_requests (request_id, "timestamp", train_id, method, path, error)
                     select gen_random_uuid(), now(), 'dup', 'POST', '/v1/messages', 'boom' from generate_series(1, 3)`)
      await expect(c.query(`create unique index concurrently ${INDEX} on api_requests (train_id) where error is not null`)).rejects.toThrow(/could not create unique index/)
      const { rows } = await c.query(`select indisvalid from pg_index where indexrelid = to_regclass($1)`, [INDEX])
      expect(rows).toEqual([{ indisvalid: false }])
    })

    writeFileSync(join(dir, 'migrations', 'current.sql'), MIGRATION)
    const commit = await graphileMigrate(['commit', '--message', 'index errors by time'], db.env, dir)
    expect(commit.exitCode, commit.all).toBe(0)

    await withClient(db.databaseUrl, async (c) => {
      const { rows } = await c.query(
        `select i.indisvalid, i.indisunique, pg_get_indexdef(i.indexrelid) as def from pg_index i where i.indexrelid = to_regclass($1)`,
        [INDEX],
      )
      expect(rows).toHaveLength(1)
      expect(rows[0].indisvalid).toBe(true)
      expect(rows[0].indisunique).toBe(false)
      expect(rows[0].def).toBe(`CREATE INDEX ${INDEX} ON public.api_requests USING btree ("timestamp") WHERE (error IS NOT NULL)`)
      const applied = await c.query(`select count(*)::int as n from graphile_migrate.migrations where filename = '000016.sql'`)
      expect(applied.rows[0].n).toBe(1)
    })
  })
})
