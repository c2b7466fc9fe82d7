/**
 * The one way this project takes a session-level advisory lock (the deploy lock, the hooks
 * lock). A session lock is released by PostgreSQL itself when its session ends, so a killed
 * process never leaves the next one locked out.
 *
 * A held lock is waited for by polling pg_try_advisory_lock, not by blocking in
 * pg_advisory_lock: a statement blocked in a lock wait keeps its snapshot open, and CREATE
 * INDEX CONCURRENTLY (the online schema step of the process holding the lock) waits for every
 * transaction with an older snapshot — the two would wait for each other forever, a cycle
 * PostgreSQL's deadlock detector cannot see, since it runs through a client process.
 */
import type pg from 'pg'
import { sleep } from './retry.js'

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

const POLL_MS = 250

export async function acquireAdvisoryLock(client: pg.ClientBase, key: string, opts: AdvisoryLockOptions): Promise<void> {
  if (await tryAdvisoryLock(client, key)) return
  if (opts.waitSeconds <= 0) throw opts.heldTooLong()
  opts.onWait?.()
  const deadline = Date.now() + opts.waitSeconds * 1000
  for (;;) {
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())))
    if (await tryAdvisoryLock(client, key)) return
    if (Date.now() >= deadline) throw opts.heldTooLong()
  }
}

export async function releaseAdvisoryLock(client: pg.ClientBase, key: string): Promise<void> {
  await client.query('select pg_advisory_unlock($1::bigint)', [key])
}
