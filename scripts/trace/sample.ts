/**
 * The scratch database's sample, and what the stall rules read into it. A trace counts rows on
 * a few hundred rows per hot table: what matters is not the count but whether it grows with
 * the table, which production multiplies by a million.
 */

/** Rows per hot table in the scratch database. */
export const SAMPLE_ROWS = 200

/** Rows a migration may update or delete on a hot table: a fix of a row or two, not a backfill. */
export const FEW_ROWS = 10

/**
 * Rows read on a hot table from which the work counts as growing with the table: a quarter of
 * the sample. Below it: the chain's lookups (`table_has_rows` reads one row per helper call).
 */
export const GROWING_READS = SAMPLE_ROWS / 4
