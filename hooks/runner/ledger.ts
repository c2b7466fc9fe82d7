/**
 * The ledger: one row per backfill in `migration_hooks.backfills`, recording how far it got.
 *
 * It lives in its own schema (not public) so that it never shows up in the application's
 * schema dump, and so that the scratch tables of staged backfills have somewhere to live.
 * Progress (step + cursor + counters) is written by the batch runner inside each batch's own
 * transaction, which is what makes a kill at any moment resumable.
 */
import { hostname } from 'node:os'
import type pg from 'pg'
import { relationExists } from '../../lib/catalog-probe.js'
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
  /** Who runs (or last ran) it: host name, process id, when that process started it. */
  runnerHost: string | null
  runnerPid: number | null
  runnerStartedAt: Date | null
  /** Last sign of life of that runner: every committed batch. */
  heartbeatAt: Date | null
  /** Rows created after this belong to the application (high-water.ts). */
  highWater: Date | null
  /** The current step's estimated size, how much of it is done, and how much was at this runner's start. */
  stepTotal: number | null
  stepDone: number | null
  stepDoneAtStart: number | null
  /** What the runner waits for before its next batch (health/throttle.ts), and since when; null when not waiting. */
  throttled: string | null
  throttledSince: Date | null
}

/** Columns added after the ledger's first release; a ledger made before gets them once. */
const ADDED_COLUMNS: Record<string, string> = {
  high_water: 'timestamptz',
  runner_host: 'text',
  runner_pid: 'integer',
  runner_started_at: 'timestamptz',
  heartbeat_at: 'timestamptz',
  step_total: 'bigint',
  step_done: 'bigint',
  step_done_at_start: 'bigint',
  throttled: 'text',
  throttled_since: 'timestamptz',
}

/** Create the schema and table if missing, and add missing columns. Callers hold the hooks lock. */
export async function ensureLedger(client: pg.ClientBase): Promise<void> {
  if (!(await ledgerExists(client))) {
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
  // Catalog first: ALTER TABLE takes an exclusive lock even when it has nothing to add.
  const { rows } = await client.query<{ column_name: string }>(
    `select column_name from information_schema.columns where table_schema = $1 and table_name = 'backfills'`,
    [LEDGER_SCHEMA],
  )
  const present = new Set(rows.map((r) => r.column_name))
  const missing = Object.entries(ADDED_COLUMNS).filter(([name]) => !present.has(name))
  if (missing.length) {
    await client.query(
      `alter table ${LEDGER_TABLE} ${missing.map(([name, type]) => `add column if not exists ${name} ${type}`).join(', ')}`,
    )
  }
}

/** Whether the ledger table exists (it does not before the first hook run). */
export function ledgerExists(client: pg.ClientBase): Promise<boolean> {
  return relationExists(client, LEDGER_TABLE)
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
    runnerHost: r.runner_host ?? null,
    runnerPid: r.runner_pid ?? null,
    runnerStartedAt: r.runner_started_at ?? null,
    heartbeatAt: r.heartbeat_at ?? null,
    highWater: r.high_water ?? null,
    stepTotal: r.step_total === null || r.step_total === undefined ? null : Number(r.step_total),
    stepDone: r.step_done === null || r.step_done === undefined ? null : Number(r.step_done),
    stepDoneAtStart: r.step_done_at_start === null || r.step_done_at_start === undefined ? null : Number(r.step_done_at_start),
    throttled: r.throttled ?? null,
    throttledSince: r.throttled_since ?? null,
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
       last_error = null, note = null, config_key = excluded.config_key, high_water = null`,
    [name, version, configKey],
  )
}

/**
 * This process takes the backfill on: recorded so that another machine can see who works.
 * Returns the high-water mark (set now when the backfill starts from scratch, kept on resume).
 */
export async function markRunning(client: pg.ClientBase, name: string): Promise<string> {
  const { rows } = await client.query<{ high_water: string }>(
    `update ${LEDGER_TABLE} set state = 'running', started_at = coalesce(started_at, now()), finished_at = null,
       last_error = null, updated_at = now(), runner_host = $2, runner_pid = $3, runner_started_at = now(),
       heartbeat_at = now(), high_water = coalesce(high_water, clock_timestamp()), throttled = null, throttled_since = null
     where name = $1 returning high_water::text`,
    [name, hostname(), process.pid],
  )
  return rows[0]!.high_water
}

/** The runner stopped on request (SIGTERM/SIGINT): pending again, resumable from the cursor. */
export async function markStopped(client: pg.ClientBase, name: string, note: string): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set state = 'pending', note = $2, updated_at = now(), throttled = null, throttled_since = null
     where name = $1`,
    [name, note],
  )
}

/**
 * A step begins (or resumes, `resumed`): its estimated size, for `db:status`'s % and ETA. A
 * resumed step keeps what is done; `step_done_at_start` is where this runner picked it up.
 */
export async function startStep(client: pg.ClientBase, name: string, total: number, resumed: boolean): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set step_total = $2,
       step_done = case when $3 then coalesce(step_done, 0) else 0 end,
       step_done_at_start = case when $3 then coalesce(step_done, 0) else 0 end
     where name = $1`,
    [name, total, resumed],
  )
}

/** Record one committed batch: called inside the batch's transaction. */
export async function saveProgress(
  client: pg.ClientBase,
  name: string,
  progress: { step: string | null; cursor: Cursor; changed: number; skipped: number; examined: number },
): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set step = $2, cursor = $3::jsonb, rows_changed = rows_changed + $4,
       rows_skipped = rows_skipped + $5, step_done = coalesce(step_done, 0) + $6, updated_at = now(), heartbeat_at = now()
     where name = $1`,
    [name, progress.step, JSON.stringify(progress.cursor), progress.changed, progress.skipped, progress.examined],
  )
}

export async function markDone(client: pg.ClientBase, name: string, note: string | null = null): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set state = 'done', step = null, cursor = null, finished_at = now(), updated_at = now(),
       last_error = null, note = $2, started_at = coalesce(started_at, now()), throttled = null, throttled_since = null where name = $1`,
    [name, note],
  )
}

/** Record a failure. The cursor is kept, so the next run resumes after the last good batch. */
export async function markFailed(client: pg.ClientBase, name: string, error: string): Promise<void> {
  await client.query(
    `update ${LEDGER_TABLE} set state = 'failed', last_error = $2, updated_at = now(), throttled = null, throttled_since = null
     where name = $1`,
    [name, error],
  )
}
