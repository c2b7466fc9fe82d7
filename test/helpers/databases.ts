/**
 * Each test works in databases of its own: `createTestDatabases()` makes an application
 * database and its shadow on the test server and drops both when the test file ends.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, inject } from 'vitest'
import pg from 'pg'
import { withClient } from '../../lib/connection.js'

export { withClient }

export interface TestDatabases {
  name: string
  databaseUrl: string
  shadowUrl: string
  rootUrl: string
  /** Environment for graphile-migrate / our scripts pointing at these databases. */
  env: NodeJS.ProcessEnv
}

const created: string[] = []
let serverOverride: string | undefined

/**
 * Use another server (a superuser URL to its maintenance database) for the rest of this test
 * file, e.g. a private embedded server that a drill may restart. `undefined` goes back to the
 * shared test server.
 */
export function useServer(root: string | undefined): void {
  serverOverride = root
}

export function rootUrl(): string {
  return serverOverride ?? inject('rootUrl')
}

export function urlFor(database: string): string {
  const u = new URL(rootUrl())
  u.pathname = '/' + database
  return u.toString()
}

export async function createTestDatabases(label = 't'): Promise<TestDatabases> {
  const name = `${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`
  await withClient(rootUrl(), async (c) => {
    await c.query(`create database ${pg.escapeIdentifier(name)}`)
    await c.query(`create database ${pg.escapeIdentifier(name + '_shadow')}`)
  })
  created.push(name)
  const databaseUrl = urlFor(name)
  const shadowUrl = urlFor(name + '_shadow')
  return {
    name,
    databaseUrl,
    shadowUrl,
    rootUrl: rootUrl(),
    env: {
      DATABASE_URL: databaseUrl,
      SHADOW_DATABASE_URL: shadowUrl,
      ROOT_DATABASE_URL: rootUrl(),
    },
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await withClient(rootUrl(), async (c) => {
    await c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`)
  })
}

/** Drop every database createTestDatabases made so far (also done when the test file ends). */
export async function dropTestDatabases(): Promise<void> {
  if (process.env.KEEP_TEST_DATABASES) return
  for (const name of created.splice(0)) {
    await dropDatabase(name)
    await dropDatabase(name + '_shadow')
  }
}

afterAll(dropTestDatabases)
