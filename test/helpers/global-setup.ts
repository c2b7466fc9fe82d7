/**
 * One PostgreSQL server for the whole test run. With TEST_ROOT_DATABASE_URL (a superuser
 * connection to a maintenance database) the tests use that server; otherwise they start the
 * embedded PostgreSQL in .data/test-embedded (separate from the development server in
 * .data/embedded, so tests never touch your data) and stop it afterwards if they started it.
 *
 * TEST_PG_MAJOR=16|17|18 runs the tests on another embedded line (its own data folder). Each
 * line deparses some definitions its own way (view column references, PG 18's named NOT NULL
 * constraints), so there the reference catalog is a fresh build of the chain on that same
 * server, made here once, instead of schema/schema.sql (which is PostgreSQL 15's).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { execa } from 'execa'
import type { TestProject } from 'vitest/node'
import { withClient } from '../../lib/connection.js'
import { DEFAULT_MAJOR } from '../../scripts/embedded/embedded-placement.js'
import { embeddedServerRunning, ensureEmbeddedServer, stopEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { renderSchema } from '../../scripts/schema/catalog.js'

const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..')
const MAJOR = process.env.TEST_PG_MAJOR ? Number(process.env.TEST_PG_MAJOR) : DEFAULT_MAJOR
export const TEST_DATA_ROOT = resolve(PROJECT_ROOT, '.data', MAJOR === DEFAULT_MAJOR ? 'test-embedded' : `test-embedded-${MAJOR}`)

declare module 'vitest' {
  export interface ProvidedContext {
    rootUrl: string
    embeddedDataRoot: string | null
    /** The reference catalog's file: schema/schema.sql, or this line's fresh build. */
    snapshotFile: string
  }
}

/** A fresh build of the committed chain on `server`, rendered like schema/schema.sql. */
async function freshBuildCatalog(urlFor: (db: string) => string): Promise<string> {
  const db = `fresh_reference_${process.pid}`
  await withClient(urlFor('postgres'), async (c) => {
    await c.query(`drop database if exists ${db} with (force)`)
    await c.query(`create database ${db}`)
  })
  try {
    const r = await execa('graphile-migrate', ['migrate'], {
      cwd: PROJECT_ROOT,
      preferLocal: true,
      reject: false,
      all: true,
      env: { DATABASE_URL: urlFor(db), SHADOW_DATABASE_URL: urlFor(`${db}_shadow`), ROOT_DATABASE_URL: urlFor('postgres') },
    })
    if (r.exitCode !== 0) throw new Error(`fresh build on PostgreSQL ${MAJOR} failed:\n${r.all}`)
    return await withClient(urlFor(db), (c) => renderSchema(c))
  } finally {
    await withClient(urlFor('postgres'), (c) => c.query(`drop database if exists ${db} with (force)`))
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.TEST_ROOT_DATABASE_URL
  const committed = resolve(PROJECT_ROOT, 'schema', 'schema.sql')
  if (given) {
    project.provide('rootUrl', given)
    project.provide('embeddedDataRoot', null)
    project.provide('snapshotFile', committed)
    return
  }
  const wasRunning = embeddedServerRunning(TEST_DATA_ROOT)
  const server = await ensureEmbeddedServer(TEST_DATA_ROOT, MAJOR)
  project.provide('rootUrl', server.url('postgres'))
  project.provide('embeddedDataRoot', TEST_DATA_ROOT)
  if (MAJOR === DEFAULT_MAJOR) {
    project.provide('snapshotFile', committed)
  } else {
    const file = resolve(PROJECT_ROOT, '.tmp', `fresh-catalog-pg${MAJOR}.sql`)
    mkdirSync(resolve(PROJECT_ROOT, '.tmp'), { recursive: true })
    writeFileSync(file, await freshBuildCatalog((db) => server.url(db)))
    project.provide('snapshotFile', file)
  }
  return () => {
    if (!wasRunning || process.env.CI) stopEmbeddedServer(TEST_DATA_ROOT)
  }
}
