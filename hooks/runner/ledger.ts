/**
 * The ledger: one row per backfill in `migration_hooks.backfills`, recording how far it got.
 *
 * It lives in its own schema (not public) so that it never shows up in the application's
 * schema dump, and so that the scratch tables of staged backfills have somewhere to live.
 * Progress (step + cursor + counters) is written by the batch runner inside each batch's own
 * transaction, which is what makes a kill at any moment resumable.
 */
import type pg from 'pg'
import type { Cursor } from './backfill.js'

export const LEDGER_SCHEMA = 'migration_hooks'
export const LEDGER_TABLE = `${LEDGER_SCHEMA}.backfills`

export type LedgerState = 'pending' | 'running' | 'done' | 'failed'

export interface LedgerRow {
  name: string
  version: number
  state: LedgerState
  cursor: Cursor
  step: string | null
  rowsChanged: number
  rowsSkipped: number
  startedAt: Date | null
  finishedAt: Date | null
  updatedAt: Date | null
  lastError: string | null
  note: string | null
  configKey: string | null
}

/** Create the schema and table if missing. Idempotent; callers hold the hooks lock. */
export async function ensureLedger(client: pg.ClientBase): Promise<void> {
  if (await ledgerExists(client)) return
  await client.query(`create schema if not exists ${LEDGER_SCHEMA}`)
  await client.query(`
    create table if not exists ${LEDGER_TABLE} (
      name text primary key,
      version integer not null,
      state text not null default 'pending' check (state in ('pending', 'running', 'done', 'failed')),
      cursor jsonb,
      step text,
      rows_changed bigint not null default 0,
      rows_skipped bigint not null default 0,
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz not null default now(),
      last_error text,
      note text,
      config_key text
    )`)
  await client.query(
    `comment on table ${LEDGER_TABLE} is 'Progress of the data backfills run by hooks/run.ts after migrations (one row per backfill).'`,
  )
}

/** Whether the ledger table exists (it does not before the first hook run). */
export async function ledgerExists(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query(`select to_regclass($1) is not null as ok`, [LEDGER_TABLE])
  return rows[0].ok
}

// biome-ignore lint/suspicious/noExplicitAny: a row as pg returns it, typed field by field below
function toRow(r: Record<string, any>): LedgerRow {
  return {
    name: r.name,
    version: r.version,
    state: r.state,
    cursor: r.cursor,
    step: r.step,
    rowsChanged: Number(r.rows_changed),
    rowsSkipped: Number(r.rows_skipped),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    updatedAt: r.updated_at,
    lastError: r.last_error,
    note: r.note,
    configKey: r.config_key,
  }
}

export async function readLedger(client: pg.ClientBase): Promise<Map<string, LedgerRow>> {
  const { rows } = await client.query(`select * from ${LEDGER_TABLE}`)
  return new Map(rows.map((r) => [r.name as string, toRow(r)]))
}

export async function readEntry(client: pg.ClientBase, name: string): Promise<LedgerRow | undefined> {
  const { rows } = await client.query(`select * from ${LEDGER_TABLE} where name = $1`, [name])
  return rows[0] ? toRow(rows[0]) : undefined
}

/** Start over: a new backfill, a bumped version, or changed input. */
export async function resetEntry(client: pg.ClientBase, name: string, version: number, configKey: string | null): Promise<void> {
  await client.query(
    `insert into ${LEDGER_TABLE} (name, version, state, config_key) values ($1, $2, 'pending', $3)
     on conflict (name) do update set version = excluded.version, state = 'pending', cursor = null, step = null,
       rows_changed = 0, rows_skipped = 0, started_at = null, finished_at = null, updated_at = now(),
       last_error = null, note = null, config_key = excluded.config_key`,
    [name, version, configKey],
  )
}

export async function markRunning(client: pg.ClientBase, name: string): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set state = 'running', started_at = coalesce(started_at, now()), finished_at = null,
       last_error = null, updated_at = now() where name = $1`,
    [name],
  )
}

/** Record one committed batch: called inside the batch's transaction. */
export async function saveProgress(
  client: pg.ClientBase,
  name: string,
  progress: { step: string | null; cursor: Cursor; changed: number; skipped: number },
): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set step = $2, cursor = $3::jsonb, rows_changed = rows_changed + $4,
       rows_skipped = rows_skipped + $5, updated_at = now() where name = $1`,
    [name, progress.step, JSON.stringify(progress.cursor), progress.changed, progress.skipped],
  )
}

export async function markDone(client: pg.ClientBase, name: string, note: string | null = null): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set state = 'done', step = null, cursor = null, finished_at = now(), updated_at = now(),
       last_error = null, note = $2, started_at = coalesce(started_at, now()) where name = $1`,
    [name, note],
  )
}

/** Record a failure. The cursor is kept, so the next run resumes after the last good batch. */
export async function markFailed(client: pg.ClientBase, name: string, error: string): Promise<void> {
  await client.query(`update ${LEDGER_TABLE} set state = 'failed', last_error = $2, updated_at = now() where name = $1`, [name, error])
}
