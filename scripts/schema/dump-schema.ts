/**
 * Regenerate schema/schema.sql from a database built by the chain.
 *
 *   tsx scripts/schema/dump-schema.ts --from-hook   as graphile-migrate's shadow-only
 *       afterAllMigrations action (target in GM_DBURL): runs after every `commit`, so the
 *       committed snapshot always matches the committed chain.
 *   npm run db:schema                                 rebuilds the shadow database from the
 *       chain (graphile-migrate reset --shadow) and writes the snapshot.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { renderSchema } from './catalog.js'
import { reportFatal } from '../../lib/errors.js'
import { isMainModule } from '../../lib/entry-point.js'
import { openClient } from '../../lib/connection.js'

// Relative to the working directory: graphile-migrate runs its actions in the project root
// (and tests run it in scratch copies of the project, which must not touch this checkout).
export const schemaFile = () => join(process.cwd(), 'schema', 'schema.sql')

export async function dumpSchema(databaseUrl: string, file = schemaFile()): Promise<void> {
  mkdirSync(dirname(file), { recursive: true })
  const client = await openClient(databaseUrl)
  try {
    writeFileSync(file, await renderSchema(client))
  } finally {
    await client.end()
  }
}

async function main() {
  const url = process.argv.includes('--from-hook') ? process.env.GM_DBURL : process.env.DATABASE_URL
  if (!url) throw new Error('No database: set GM_DBURL (hook) or DATABASE_URL.')
  // db:drift rebuilds the shadow only to compare with it; the snapshot is not its business.
  if (process.env.SKIP_SCHEMA_DUMP === '1') return
  // The shadow database only ever holds the committed chain (commit/uncommit rebuild it with
  // `migrate`, which never applies current.sql), so the snapshot never shows work in progress.
  await dumpSchema(url)
}

if (isMainModule(import.meta.url)) {
  main().catch((e) => process.exit(reportFatal(e, 'schema dump failed')))
}
