/**
 * What graphile-migrate has recorded as applied in a database. On a session the caller holds
 * (db:migrate's deploy-lock session): a deploy opens one connection for its schema step, not
 * one per question.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { relationExists } from '../../lib/catalog-probe.js'
import { readCommittedChain } from './chain.js'

export interface AppliedMigration {
  filename: string
  hash: string
  previousHash: string | null
  date: Date
}

export async function appliedMigrations(client: pg.ClientBase): Promise<AppliedMigration[]> {
  if (!(await relationExists(client, 'graphile_migrate.migrations'))) return []
  const { rows } = await client.query<AppliedMigration>(
    'select filename, hash, previous_hash as "previousHash", date from graphile_migrate.migrations order by filename',
  )
  return rows
}

/**
 * How many committed migrations on disk the database has not applied. graphile-migrate
 * records only each file's number, so numbers are compared.
 */
export async function pendingMigrationCount(client: pg.ClientBase, migrationsFolder: string): Promise<number> {
  const applied = new Set((await appliedMigrations(client)).map((m) => m.filename.slice(0, 6)))
  const onDisk = existsSync(join(migrationsFolder, 'committed')) ? readCommittedChain(migrationsFolder) : []
  return onDisk.filter((m) => !applied.has(m.filename.slice(0, 6))).length
}
