/**
 * The committed chain builds a fresh database whose schema equals the reviewed snapshot, and
 * every committed body can be run again without changing anything.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import { graphileMigrate, PROJECT_ROOT } from '../helpers/project.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'

const committedFiles = readdirSync(join(PROJECT_ROOT, 'migrations', 'committed'))
  .filter((f) => f.endsWith('.sql'))
  .sort()

describe('fresh build', () => {
  let db: TestDatabases
  beforeAll(async () => {
    db = await createTestDatabases('fresh')
    const r = await graphileMigrate(['migrate'], db.env)
    expect(r.exitCode, r.all).toBe(0)
  })

  it('records every committed migration once', async () => {
    const rows = await withClient(db.databaseUrl, (c) =>
      c.query('select filename from graphile_migrate.migrations order by filename').then((r) => r.rows.map((x) => x.filename)),
    )
    // graphile-migrate records the number only ("000001.sql"), not the message slug.
    expect(rows).toEqual(committedFiles.map((f) => f.slice(0, 6) + '.sql'))
    expect(rows).toHaveLength(committedFiles.length)
    expect(committedFiles.length).toBeGreaterThanOrEqual(15)
  })

  it('has exactly the committed schema snapshot', async () => {
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
  })

  it('a second migrate is a no-op', async () => {
    const r = await graphileMigrate(['migrate'], db.env)
    expect(r.exitCode).toBe(0)
    expect(r.all).toMatch(/Already up to date/)
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
  })

  it('re-running every committed body leaves the catalog unchanged', async () => {
    const before = await catalogOf(db.databaseUrl)
    for (const file of committedFiles) {
      const r = await graphileMigrate(['run', join('migrations', 'committed', file)], db.env)
      expect(r.exitCode, `${file}: ${r.all}`).toBe(0)
    }
    expect(await catalogOf(db.databaseUrl)).toBe(before)
  })
})
