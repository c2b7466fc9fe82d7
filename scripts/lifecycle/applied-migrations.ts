/** What graphile-migrate has recorded as applied in a database. */
import { openClient } from '../../lib/connection.js'

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
