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

/** The session holding an advisory lock in this database right now (a dead process's holds nothing). */
export interface LockHolder {
  pid: number
  applicationName: string
  clientAddress: string | null
  /** When that session's current statement began (null when idle). */
  queryStart: Date | null
}

export async function advisoryLockHolder(client: pg.ClientBase, key: string): Promise<LockHolder | null> {
  const { rows } = await client.query<{ pid: number; application_name: string; client_addr: string | null; query_start: Date | null }>(
    `select l.pid, a.application_name, host(a.client_addr) as client_addr, a.query_start
       from pg_catalog.pg_locks l join pg_catalog.pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
        and ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint and l.objsubid = 1
      limit 1`,
    [key],
  )
  const r = rows[0]
  return r ? { pid: r.pid, applicationName: r.application_name, clientAddress: r.client_addr, queryStart: r.query_start } : null
}
