import { readFileSync } from 'node:fs'
import { inject } from 'vitest'
import { renderSchema } from '../../scripts/schema/catalog.js'
import { withClient } from './databases.js'

/** The schema of a database, rendered exactly as schema/schema.sql is. */
export function catalogOf(url: string): Promise<string> {
  return withClient(url, (c) => renderSchema(c))
}

/**
 * The committed, reviewed snapshot (schema/schema.sql) — or, on another PostgreSQL line
 * (TEST_PG_MAJOR), a fresh build on that server (test/helpers/global-setup.ts).
 */
export function committedSnapshot(): string {
  return readFileSync(inject('snapshotFile'), 'utf8')
}
