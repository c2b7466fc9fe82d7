/** The hooks' database sessions: the main one (lock, ledger, writes) and the read-ahead one. */
import type pg from 'pg'
import { openClient } from '../../lib/connection.js'
import type { HookSettings } from './backfill.js'
import { setParameters, timeoutParameters } from './parameters.js'

export async function connect(databaseUrl: string, applicationName: string): Promise<pg.Client> {
  // Unqualified names mean the application's schema, whatever the role's own search_path.
  return openClient(databaseUrl, { applicationName, searchPath: 'public' })
}

export async function tableExists(client: pg.ClientBase, name: string): Promise<boolean> {
  const { rows } = await client.query(`select to_regclass($1) is not null as ok`, [name])
  return rows[0].ok
}

/**
 * The second session, for planned steps' reads (hooks/runner/backfill.ts, PlannedStep). Its
 * statements run outside any transaction, bounded by the same timeouts as a batch.
 */
export async function connectReader(databaseUrl: string, settings: HookSettings): Promise<pg.Client> {
  const client = await connect(databaseUrl, 'migration hooks reader')
  await setParameters(client, timeoutParameters(settings), 'session')
  return client
}
