/**
 * The operator's two proofs: db:verify names an applied migration edited afterwards (which
 * graphile-migrate itself never notices), and db:drift is silent on an untouched database but
 * names a column added by hand.
 */
import { chmodSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import { graphileMigrate, projectCopy, tsxScript, PROJECT_ROOT } from '../helpers/project.js'

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

describe('db:drift', () => {
  it('is silent on an untouched database and names a column added by hand', async () => {
    const target = await createTestDatabases('drift')
    expect((await db(process.cwd(), ['migrate'], target.env)).exitCode).toBe(0)
    const clean = await db(process.cwd(), ['drift', '--json'], target.env)
    expect(clean.exitCode, clean.all).toBe(0)
    expect(JSON.parse(clean.stdout.trim().split('\n').at(-1)!)).toEqual({ drift: false, statements: [] })

    await withClient(target.databaseUrl, (c) => c.query('alter table api_requests add column added_by_hand text'))
    const drifted = await db(process.cwd(), ['drift', '--json'], target.env)
    expect(drifted.exitCode).toBe(1)
    const report = JSON.parse(drifted.stdout.trim().split('\n').at(-1)!)
    expect(report.drift).toBe(true)
    expect(report.statements.join('\n')).toMatch(/alter table "public"\."api_requests" drop column "added_by_hand"/)

    const human = await db(process.cwd(), ['drift'], target.env)
    expect(human.exitCode).toBe(1)
    expect(human.stdout).toContain('"added_by_hand"')
  })

  it('is silent on a converged legacy script-chain database (columns at other positions)', async () => {
    const target = await createTestDatabases('drift_legacy')
    await withClient(target.databaseUrl, (c) =>
      c.query(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'legacy', 'script-chain.sql'), 'utf8')),
    )
    expect((await db(process.cwd(), ['migrate'], target.env)).exitCode).toBe(0)
    const r = await db(process.cwd(), ['drift', '--json'], target.env)
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual({ drift: false, statements: [] })
    expect(r.exitCode).toBe(0)
  })
})
