/**
 * Only one hook run per database at a time: two deploys, or `watch` firing while a migrate
 * runs, would otherwise walk the same rows and fight over the ledger. A session-level advisory
 * lock is released by PostgreSQL itself if the process dies, so a killed run never leaves
 * the next one locked out.
 */
import type pg from 'pg'
import { UserError } from '../../lib/errors.js'
import { setParameters } from './parameters.js'

/** "APT HOOKS": distinct from the deploy lock (…001) and graphile-migrate's own key. */
export const HOOKS_LOCK_KEY = '2780337569002'

/** Take the hooks lock on `client`'s session, waiting at most `waitSeconds`. */
export async function acquireHooksLock(client: pg.ClientBase, waitSeconds: number, log: (line: string) => void): Promise<void> {
  const { rows } = await client.query('select pg_try_advisory_lock($1::bigint) as ok', [HOOKS_LOCK_KEY])
  if (rows[0].ok) return
  const tooLong = new UserError(
    `Another migration hook run has held the hooks lock for more than ${waitSeconds}s (HOOKS_LOCK_WAIT_SECONDS). ` +
      `Wait for it to finish (its progress is in migration_hooks.backfills), or raise HOOKS_LOCK_WAIT_SECONDS.`,
  )
  if (waitSeconds === 0) throw tooLong
  log(`Another migration hook run is in progress; waiting up to ${waitSeconds}s for it to finish…`)
  // lock_timeout bounds the wait of pg_advisory_lock, like any other lock wait.
  await setParameters(client, { lock_timeout: `${waitSeconds * 1000}ms` }, 'session')
  try {
    await client.query('select pg_advisory_lock($1::bigint)', [HOOKS_LOCK_KEY])
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') throw tooLong
    throw error
  } finally {
    await client.query('reset lock_timeout').catch(() => {})
  }
}

export async function releaseHooksLock(client: pg.ClientBase): Promise<void> {
  await client.query('select pg_advisory_unlock($1::bigint)', [HOOKS_LOCK_KEY])
}
