/**
 * The operator's first proof: db:verify names an applied migration edited afterwards (which
 * graphile-migrate itself never notices), a missing file and an out-of-order one. It compares
 * files with graphile-migrate's own records, whatever the server's line, so it runs on 15 only
 * (vitest.config.ts); db:drift, which reads the server's catalogs, is in drift.test.ts.
 */
import { chmodSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, type TestDatabases } from '../helpers/databases.js'
import { graphileMigrate, projectCopy, tsxScript } from '../helpers/project.js'

const db = (cwd: string, args: string[], env: NodeJS.ProcessEnv) => tsxScript('scripts/cli/db.ts', args, env, cwd)

describe('db:verify', () => {
  let dir: string
  let target: TestDatabases
  beforeAll(async () => {
    dir = projectCopy()
    target = await createTestDatabases('verify')
    expect((await graphileMigrate(['migrate'], target.env, dir)).exitCode).toBe(0)
  })

  it('db:status works with only DATABASE_URL set (production deploys)', async () => {
    expect((await db(dir, ['migrate'], target.env)).exitCode).toBe(0)
    const r = await db(dir, ['status'], { DATABASE_URL: target.databaseUrl })
    expect(r.exitCode, r.all).toBe(0)
  })

  it('passes on an intact chain', async () => {
    const r = await db(dir, ['verify'], target.env)
    expect(r.exitCode, r.all).toBe(0)
  })

  it('names an applied migration whose body was edited afterwards', async () => {
    const committed = join(dir, 'migrations', 'committed')
    const file = readdirSync(committed).sort()[6]!
    const original = readFileSync(join(committed, file), 'utf8')
    chmodSync(join(committed, file), 0o644)
    const edited = original.replace("'system_hash varchar(64)'", "'system_hash varchar(65)'")
    expect(edited).not.toBe(original)
    writeFileSync(join(committed, file), edited)
    try {
      // graphile-migrate does not notice: the file was already applied.
      expect((await graphileMigrate(['migrate'], target.env, dir)).exitCode).toBe(0)
      const r = await db(dir, ['verify'], target.env)
      expect(r.exitCode).toBe(1)
      expect(r.stdout).toContain(`${file}: edited after it was applied`)
    } finally {
      writeFileSync(join(committed, file), original)
    }
  })

  it('names a missing file and an out-of-order one', async () => {
    const committed = join(dir, 'migrations', 'committed')
    const last = readdirSync(committed).sort().at(-1)!
    renameSync(join(committed, last), join(dir, last))
    try {
      const r = await db(dir, ['verify'], target.env)
      expect(r.exitCode).toBe(1)
      expect(r.stdout).toContain(`${last.slice(0, 6)}.sql: applied to the database`)
      expect(r.stdout).toMatch(/missing from migrations\/committed/)
    } finally {
      renameSync(join(dir, last), join(committed, last))
    }
    const r = await db(dir, ['verify'], target.env)
    expect(r.exitCode, r.all).toBe(0)
  })
})
