/** The hooks' database sessions: the main one (lock, ledger, writes) and the read-ahead one. */
import type pg from 'pg'
import { openClient } from '../../lib/connection.js'
import type { HookSettings } from './backfill.js'
import { setParameters, timeoutParameters } from './parameters.js'

/**
 * Bounds on a hook session whose process or host vanished without closing it: the server
 * probes the idle connection (openClient's serverKeepalives), and a session that sits in an
 * open transaction for a minute is ended — so a dead runner never holds row locks (or the
 * hooks lock) for hours. A live runner is never idle that long: a batch transaction lasts
 * about HOOKS_BATCH_TARGET_MS.
 */
const DEAD_PEER_PARAMETERS = { idle_in_transaction_session_timeout: '60s' }

export async function connect(databaseUrl: string, applicationName: string): Promise<pg.Client> {
  // Only the catalog is on the path, and every application object is named with its schema:
  // a function or operator another role planted in public (say `=` for two varchars, an exact
  // match that would beat the built-in one) cannot stand in for the built-ins.
  const client = await openClient(databaseUrl, { applicationName, searchPath: 'pg_catalog', serverKeepalives: true })
  await setParameters(client, DEAD_PEER_PARAMETERS, 'session')
  return client
}

/**
 * The second session: the row pass reads one batch ahead on it (row-pass/walk.ts), and GIN
 * pending lists are merged on it between batches (gin-pending.ts). Its
 * statements run outside any transaction, bounded by the same timeouts as a batch.
 */
export async function connectReader(databaseUrl: string, settings: HookSettings): Promise<pg.Client> {
  const client = await connect(databaseUrl, 'migration hooks reader')
  await setParameters(client, timeoutParameters(settings), 'session')
  return client
}

/**
 * The health session (health/throttle.ts): reads the signals and records a wait on the
 * ledger, always outside any transaction. Its ledger writes wait for a batch's row lock no
 * longer than a batch would.
 */
export async function connectHealth(databaseUrl: string, settings: HookSettings): Promise<pg.Client> {
  const client = await connect(databaseUrl, 'migration hooks health')
  await setParameters(client, timeoutParameters(settings), 'session')
  return client
}
