/**
 * Databases for the hook tests: the committed chain is migrated once per test file into a
 * template (hooks deferred, so no backfill has run), and every test gets a copy of it —
 * `create database … template …` takes a fraction of a second, where migrating takes seconds.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll } from 'vitest'
import { createTestDatabases, dropDatabase, rootUrl, urlFor, withClient } from '../../helpers/databases.js'
import { graphileMigrate } from '../../helpers/project.js'

let template: Promise<string> | undefined
const copies: string[] = []

/** Name of a database holding the migrated, empty schema, with no hook run yet. */
export function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const db = await createTestDatabases('hooks_tpl')
    const result = await graphileMigrate(['migrate'], { ...db.env, MIGRATION_HOOKS_DEFERRED: '1' })
    if (result.exitCode !== 0) throw new Error(`migrating the hook test template failed:\n${result.all}`)
    return db.name
  })()
  return template
}

/** A new database copied from `source` (default: the migrated template); returns its URL. */
export async function copyDatabase(label: string, source?: string): Promise<{ name: string; url: string }> {
  const from = source ?? (await migratedTemplate())
  const name = `${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`
  await withClient(rootUrl(), (c) => c.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(from)}`))
  copies.push(name)
  return { name, url: urlFor(name) }
}

/** A freshly migrated database (a copy of the template). */
export async function freshDatabase(label = 'hooks'): Promise<string> {
  return (await copyDatabase(label)).url
}

afterAll(async () => {
  if (process.env.KEEP_TEST_DATABASES) return
  for (const name of copies.splice(0)) await dropDatabase(name)
})

/** Connect, run, disconnect. */
export function inDb<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(url, fn)
}
