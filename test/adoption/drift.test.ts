/**
 * The operator's second proof: db:drift is silent on an untouched database and on a converged
 * legacy one, but names a column added by hand. It compares the server's catalogs, so it runs
 * on every PostgreSQL line (db:verify is in verify.test.ts).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { PROJECT_ROOT, tsxScript } from '../helpers/project.js'

const db = (cwd: string, args: string[], env: NodeJS.ProcessEnv) => tsxScript('scripts/cli/db.ts', args, env, cwd)

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
