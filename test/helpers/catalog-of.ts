import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderSchema } from '../../scripts/schema/catalog.js'
import { withClient } from './databases.js'
import { PROJECT_ROOT } from './project.js'

/** The schema of a database, rendered exactly as schema/schema.sql is. */
export function catalogOf(url: string): Promise<string> {
  return withClient(url, (c) => renderSchema(c))
}

/** The committed, reviewed snapshot. */
export function committedSnapshot(): string {
  return readFileSync(join(PROJECT_ROOT, 'schema', 'schema.sql'), 'utf8')
}
