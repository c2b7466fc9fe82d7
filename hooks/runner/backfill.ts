/**
 * The contract every backfill module implements. The runner (hooks/run.ts, driving
 * hooks/runner/batch-runner.ts) owns ordering, the ledger (migration_hooks.backfills), locking,
 * transactions, retries, progress and summaries; a module only says how to process one batch.
 *
 * A backfill is an ordered list of steps. Each step is run batch by batch; every batch runs in
 * its own short transaction, and the runner writes the step's new cursor to the ledger in that
 * SAME transaction — so a process killed at any moment resumes exactly where the last
 * committed batch stopped, and never applies a batch twice.
 *
 * A backfill that computes a row's own column from that row declares a `row` rule instead of
 * steps (row-rule.ts): the runner combines all of them into one pass. Logic that is not
 * per-row (sub-task matching) uses several steps — key walks are built with `keyWalkStep()`
 * (hooks/runner/key-walk.ts) — keeping its intermediate state in tables of the
 * `migration_hooks` schema so that it survives a kill as well.
 */
import type pg from 'pg'
import type { HealthLimits } from './health/limits.js'
import type { RowRule } from './row-rule.js'

/** What a step stores between batches: JSON, persisted in the ledger's `cursor` column. */
export type Cursor = string | number | boolean | null | Cursor[] | { [key: string]: Cursor }

export interface HookSettings {
  /**
   * Keys per batch (HOOKS_BATCH_SIZE). The runner lowers it, per batch, to keep transactions
   * near `batchTargetMs`; a step just reads `settings.batchSize` of the context it is given.
   */
  batchSize: number
  /** Aimed duration of one batch transaction; 0 = fixed size (HOOKS_BATCH_TARGET_MS). */
  batchTargetMs: number
  /** Pause between batches, to leave room for production traffic (HOOKS_BATCH_DELAY_MS). */
  batchDelayMs: number
  /** `set local lock_timeout` of every batch transaction (HOOKS_LOCK_TIMEOUT_MS). */
  lockTimeoutMs: number
  /** `set local statement_timeout` of every batch transaction (HOOKS_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number
  /** Retries of a batch that hit lock_timeout / a deadlock (HOOKS_MAX_RETRIES). */
  maxRetries: number
  /** Sub-task matching window after the parent's end (HOOKS_SUBTASK_WINDOW_MS). */
  subtaskWindowMs: number
  /** How long to wait for another hook run's lock (HOOKS_LOCK_WAIT_SECONDS). */
  lockWaitSeconds: number
  /** Interval of plain progress lines when output is not a terminal (HOOKS_PROGRESS_INTERVAL_MS). */
  progressIntervalMs: number
  /**
   * Plain `graphile-migrate migrate` runs the hooks inside its own lock: there they run only
   * when api_requests has at most this many rows (HOOKS_INLINE_MAX_ROWS); bigger databases
   * leave them to `npm run db:backfill`.
   */
  inlineMaxRows: number
  /**
   * Sessions that walk the row pass at once in this process (HOOKS_WORKERS); other processes
   * may join it too (hooks/runner/row-pass/).
   */
  workers: number
  /**
   * A claimed chunk of the row pass whose runner sent no heartbeat for this long is taken over
   * by another runner (HOOKS_CLAIM_LEASE_SECONDS).
   */
  claimLeaseSeconds: number
  /**
   * When the batches wait for the database's health: standby lag, slots, the archiver,
   * autovacuum (HOOKS_THROTTLE, HOOKS_MAX_*, HOOKS_HEALTH_CHECK_MS; health/limits.ts).
   */
  health: HealthLimits
  /**
   * The row pass vacuums the part of api_requests it has walked every this many percent of
   * the heap, so that later row versions reuse the space of the old ones (0 = never;
   * HOOKS_RECLAIM_EVERY_PERCENT; row-pass/reclaim.ts).
   */
  reclaimEveryPercent: number
  /** Path of the train → account mapping file, if configured (ACCOUNT_MAPPING_FILE). */
  accountMappingFile?: string
}

export interface BatchContext {
  /** Connection for this batch; the runner has already opened the batch transaction on it. */
  client: pg.ClientBase
  dryRun: boolean
  settings: HookSettings
  /** Whatever the backfill's `prepare()` returned as `input` (e.g. a validated mapping). */
  input: unknown
  log: (message: string) => void
}

export interface BatchResult {
  /** Rows this batch changed (or would change, in a dry run). */
  changed: number
  /** Rows that looked pending but were malformed or unresolvable and were left alone. */
  skipped: number
  /** Rows (or items) this batch looked at, for the progress display. */
  examined?: number
}

export interface Step {
  name: string
  /**
   * The step writes only the backfill's own scratch tables (in migration_hooks), never the
   * application's rows. A dry run keeps such a step's writes until it ends (later steps read
   * them); every other batch of a dry run is rolled back when it ends, releasing its row locks.
   */
  scratchOnly?: boolean
  /** Estimated number of rows/items the step will examine, for progress and ETA. */
  estimate?(client: pg.ClientBase, settings: HookSettings): Promise<number>
  /**
   * Run one batch starting from `cursor` (null at the start). Return the next cursor, or
   * null when the step is finished. Must only touch what still needs the change, so that a
   * re-run is a no-op.
   */
  runBatch(ctx: BatchContext, cursor: Cursor): Promise<BatchResult & { cursor: Cursor }>
}

/** What `prepare()` decided before anything is written. */
export interface Prepared {
  /** Set to skip the backfill: recorded as done with this note (not a failure). */
  skip?: string
  /**
   * Fingerprint of the backfill's external input (e.g. the mapping file's hash). When it
   * differs from the one recorded in the ledger, the backfill re-runs from the start, like a
   * version bump — so configuring a mapping file later is picked up.
   */
  configKey?: string
  /** Passed to every batch as `ctx.input`. */
  input?: unknown
}

export interface Backfill {
  /** Stable identifier, used as the ledger key. */
  name: string
  /** Bump to re-run the backfill over every row (the ledger resets its cursor). */
  version: number
  description: string
  /** Tables this backfill may change, ANALYZEd after it changed something. */
  tables: string[]
  /**
   * Read and validate external input before any batch runs. Throwing fails the backfill
   * with nothing changed.
   */
  prepare?(settings: HookSettings): Promise<Prepared> | Prepared
  /**
   * Backfills whose output this one reads (they come earlier in hooks/backfills/index.ts):
   * `--only` must name them too.
   */
  needs?: readonly string[]
  /**
   * Statements (`create or replace function …` in migration_hooks) that the row rule's SQL
   * calls: run before every row pass it takes part in.
   */
  setupSql?: readonly string[]
  /**
   * A per-row backfill declares its rule (or rules, each with its own column) and no steps:
   * the runner combines the pending ones into one walk and one write per row (row-rule.ts).
   */
  row?: RowRule | readonly RowRule[]
  /**
   * The steps of a staged backfill, run batch by batch. A backfill with a `row` rule as well
   * runs its steps *before* the row pass — they may read api_requests and write only their
   * scratch tables (`scratchOnly`) — and its rules inside it: what the steps decide is written
   * with the row's other new columns, one row version per row.
   */
  steps: Step[]
  /**
   * A backfill with a `row` rule: called in the transaction that marks it done after the row
   * pass (e.g. to retire its scratch tables, or tables its `setupSql` created: see
   * retired-tables.ts; the runner drops them after that transaction).
   */
  afterRowPass?(client: pg.ClientBase): Promise<void>
}

/** The row rules of a backfill (none for a staged one). */
export const rulesOf = (backfill: Backfill): readonly RowRule[] =>
  backfill.row === undefined ? [] : Array.isArray(backfill.row) ? (backfill.row as readonly RowRule[]) : [backfill.row as RowRule]

/**
 * The ledger's `step` of a backfill with steps and a row rule whose steps are all done: what
 * is left is its part of the row pass — whose batches record their phase (`walk`,
 * `catch-up`) as the step.
 */
export const ROW_PASS_STEP = 'row-pass'
export const ROW_PASS_PHASES: readonly string[] = [ROW_PASS_STEP, 'walk', 'catch-up']
/** The phases in which the row pass is writing what such a backfill's steps decided. */
export const WRITING_PHASES: readonly string[] = ROW_PASS_PHASES.filter((phase) => phase !== ROW_PASS_STEP)

/** A backfill that decides in steps before the row pass and writes in it (sub-task linking). */
export const decidesBeforeRowPass = (backfill: Backfill): boolean => backfill.row !== undefined && backfill.steps.length > 0
