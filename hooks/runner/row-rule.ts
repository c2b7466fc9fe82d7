/**
 * The contract of a per-row backfill: one that computes a column of an `api_requests` row
 * from that row alone (task_tool_invocation, parent_request_id, account_id, system_hash).
 *
 * Such a backfill declares *what* a row needs — a `RowRule` — and no steps. The runner
 * (hooks/runner/row-pass/) combines every pending rule into ONE walk of the table in physical
 * order and ONE UPDATE per changed row that sets all of that row's new columns at once: each
 * row version written costs an entry in every index of the table (27 of them, 3 GIN), so four
 * passes that each rewrote the row cost four times the one. Each backfill keeps its own ledger
 * entry, version and config key: bumping one version re-runs only its column (the others'
 * rows are no longer pending, so the walk reads them but computes and writes nothing).
 *
 * SQL fragments name the row `a` (`public.api_requests a`). `:input` in a fragment stands for
 * the backfill's prepared input as a jsonb parameter (e.g. the account mapping), so that rules
 * never interpolate values into SQL.
 */

/** What the walk read for one row: the rule's `read` expressions by name (and `old`, see `guard`). */
export type RowReading = Record<string, unknown>

/**
 * A rule's verdict on one pending row: its new value (and those of its `also` columns),
 * malformed (counted, left alone), or nothing to do.
 */
export type RowOutcome = { value: unknown; also?: Record<string, unknown> } | 'skip' | null

export interface RowRule {
  /** The api_requests column this backfill fills. */
  column: string
  /** Its SQL type, as the write's record declares it (`text`, `uuid`, `jsonb`). */
  type: string
  /**
   * SQL: the row may need this backfill. Cheap (columns only, no body decompressed): the walk
   * evaluates it for every row, and the `read` expressions only where it holds.
   */
  pending: string
  /** SQL expressions the computation needs, by name; evaluated only for pending rows. */
  read: Record<string, string>
  /** The row's new value (null: nothing to change; 'skip': malformed, left alone and counted). */
  compute(row: RowReading, input: unknown): RowOutcome
  /**
   * How the write re-checks that the row still needs the value (the application may have
   * written the row since it was read): 'still-null' writes only where the column is NULL;
   * 'unchanged' only where it still holds the value read (given to `compute` as `old`).
   */
  guard: 'still-null' | 'unchanged'
  /**
   * Further columns the rule sets with `column`, by name → SQL type: written only where
   * `column` is, under its guard (sub-task linking moves a row to its parent's conversation
   * with its parent_task_request_id). No other rule may write them.
   */
  also?: Record<string, string>
}

/*
 * Two rules may share a column (task-invocations writes task_tool_invocation, sub-task linking
 * adds the links to it). They compose in the order of the backfills: the later rule's
 * `compute` gets, as `old`, the value the earlier one computed for the row, and the row is
 * still written once, with the last value, under each rule's guard on the value read.
 */
