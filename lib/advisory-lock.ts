/**
 * The one way this project takes a session-level advisory lock (the deploy lock, the hooks
 * lock). A session lock is released by PostgreSQL itself when its session ends, so a killed
 * process never leaves the next one locked out.
 *
 * A free lock is taken at once with pg_try_advisory_lock; otherwise the caller is told (to
 * say so on the terminal) and we wait in pg_advisory_lock, bounded by lock_timeout like any
 * other lock wait — no polling, and the waiter shows in pg_locks as waiting.
 */
import type pg from 'pg'

export interface AdvisoryLockOptions {
  /** How long to wait for a held lock; 0 = do not wait. */
  waitSeconds: number
  /** Called once when the lock is held by another session and we start waiting. */
  onWait?: () => void
  /** The error to throw when the lock is still held after `waitSeconds`. */
  heldTooLong: () => Error
}

export async function tryAdvisoryLock(client: pg.ClientBase, key: string): Promise<boolean> {
  const { rows } = await client.query('select pg_try_advisory_lock($1::bigint) as ok', [key])
  return rows[0].ok
}

export async function acquireAdvisoryLock(client: pg.ClientBase, key: string, opts: AdvisoryLockOptions): Promise<void> {
  if (await tryAdvisoryLock(client, key)) return
  if (opts.waitSeconds <= 0) throw opts.heldTooLong()
  opts.onWait?.()
  await client.query(`select set_config('lock_timeout', $1, false)`, [`${Math.round(opts.waitSeconds * 1000)}ms`])
  try {
    await client.query('select pg_advisory_lock($1::bigint)', [key])
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') throw opts.heldTooLong()
    throw error
  } finally {
    await client.query('reset lock_timeout').catch(() => {})
  }
}

export async function releaseAdvisoryLock(client: pg.ClientBase, key: string): Promise<void> {
  await client.query('select pg_advisory_unlock($1::bigint)', [key])
}
