/** What graphile-migrate has recorded as applied in a database. */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { openClient } from '../../lib/connection.js'
import { readCommittedChain } from './chain.js'

export interface AppliedMigration {
  filename: string
  hash: string
  previousHash: string | null
  date: Date
}

export async function appliedMigrations(databaseUrl: string): Promise<AppliedMigration[]> {
  const client = await openClient(databaseUrl)
  try {
    const { rows: exists } = await client.query(`select to_regclass('graphile_migrate.migrations') is not null as ok`)
    if (!exists[0].ok) return []
    const { rows } = await client.query(
      'select filename, hash, previous_hash as "previousHash", date from graphile_migrate.migrations order by filename',
    )
    return rows
  } finally {
    await client.end()
  }
}

/**
 * How many committed migrations on disk the database has not applied. graphile-migrate
 * records only each file's number, so numbers are compared.
 */
export async function pendingMigrationCount(databaseUrl: string, migrationsFolder: string): Promise<number> {
  const applied = new Set((await appliedMigrations(databaseUrl)).map((m) => m.filename.slice(0, 6)))
  const onDisk = existsSync(join(migrationsFolder, 'committed')) ? readCommittedChain(migrationsFolder) : []
  return onDisk.filter((m) => !applied.has(m.filename.slice(0, 6))).length
}
