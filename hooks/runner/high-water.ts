/**
 * Which rows a backfill may write: the ones that existed when it started.
 *
 * When a backfill starts from scratch the runner records a high-water mark in the ledger
 * (`high_water`, the database clock). A row whose `created_at` is later was inserted by the
 * application while the backfill ran, and the application fills those columns itself, so the
 * backfill never writes it — wherever its random request_id sorts relative to the cursor.
 * A resumed run keeps the first mark: rows inserted between two runs are the application's
 * too. Rows with no created_at (legacy) count as pre-existing.
 *
 * The mark reaches the writers' SQL as a transaction-local setting of every batch
 * (transaction.ts), so a writer only adds `${preExisting('a')}` to its WHERE clause.
 */

/** The run-time parameter carrying the mark into each batch transaction. */
export const HIGH_WATER_SETTING = 'migration_hooks.high_water'

/**
 * SQL: the row aliased `alias` existed before the mark. With no mark set (a step run outside
 * the runner, e.g. in a unit test) every row counts as pre-existing.
 */
export function preExisting(alias: string): string {
  return `coalesce(${alias}.created_at, '-infinity'::timestamptz) <= coalesce(nullif(current_setting('${HIGH_WATER_SETTING}', true), '')::timestamptz, 'infinity'::timestamptz)`
}
