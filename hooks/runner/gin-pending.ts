/**
 * GIN pending lists, kept out of the batch transactions.
 *
 * api_requests has GIN indexes (response_body, task_tool_invocation) with fastupdate on, the
 * default: a row written is first appended to the index's pending list, and whichever session
 * inserts while the list is over gin_pending_list_limit (4 MB by default) merges the whole
 * list into the index, inside its own statement. Our backfills update many rows, and every
 * updated row is re-inserted into every index (a changed indexed column rules out HOT
 * updates), so the list fills every few batches: the merge then lands in a batch transaction
 * (hundreds of milliseconds with row locks held) or, worse, in one of the application's
 * inserts.
 *
 * So, where the hooks' role owns these indexes: batch transactions raise
 * gin_pending_list_limit (their inserts never merge inline), and every few batches the runner
 * merges what they appended with gin_clean_pending_list(), in its own statement on the
 * read-ahead session, which holds no row locks. The list stays short, so the application's inserts
 * never meet a full one either. Without ownership the function is not allowed; nothing
 * changes then and PostgreSQL merges inline as usual.
 */
import type pg from 'pg'
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'

/**
 * Rows changed between two merges. Merging is cheaper per entry on longer lists, so not after
 * every batch; but the list must stay well under the 4 MB default even while a merge waits
 * its turn on the reader, or an application insert merges it inline. 2,000 rows of
 * api_requests add about 1.6 MB per GIN index on response_body; at 4,000 the benchmark's
 * writer saw an 0.8 s insert.
 */
export const MERGE_EVERY_ROWS = 2000

/** gin_pending_list_limit (kB) in batch transactions when the runner merges between batches. */
export const DEFERRED_PENDING_LIST_KB = 2_097_151

/** GIN indexes with a pending list on `tables` that the current role may clean (owns). */
export async function cleanableGinIndexes(client: pg.ClientBase, tables: string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select format('%I.%I', n.nspname, ic.relname) as name
       from pg_index i
       join pg_class ic on ic.oid = i.indexrelid
       join pg_namespace n on n.oid = ic.relnamespace
       join pg_am am on am.oid = ic.relam
      where am.amname = 'gin' and i.indisvalid
        and i.indrelid = any (select to_regclass(format('public.%I', t)) from unnest($1::text[]) t)
        and coalesce((select option_value from pg_options_to_table(ic.reloptions) where option_name = 'fastupdate'), 'on') in ('on', 'true')
        and pg_has_role(current_user, ic.relowner, 'USAGE')
      order by 1`,
    [tables],
  )
  return rows.map((r) => r.name)
}

/** Merge the pending lists of `indexes` into their indexes (each in its own statement). */
export async function cleanPendingLists(client: pg.ClientBase, indexes: string[]): Promise<void> {
  for (const index of indexes) await client.query(`select gin_clean_pending_list($1::regclass)`, [index])
}

/** The runner's view: whether to defer merges in the next batch, and what to do after one. */
export interface GinMerger {
  /** Batch transactions should raise gin_pending_list_limit (merges happen between batches). */
  active(): boolean
  /** A batch committed, having changed `changed` rows; `stepDone`: it was its step's last. */
  afterBatch(changed: number, stepDone: boolean): void
  /** Wait for the merges queued so far (they never reject). */
  settled(): Promise<void>
}

export const NO_GIN_MERGES: GinMerger = { active: () => false, afterBatch: () => {}, settled: async () => {} }

/**
 * Merges for one backfill's `tables`, run on `reader` every MERGE_EVERY_ROWS changed rows and
 * at the end of each step. They are queued on the reader behind its read-ahead, so they overlap
 * the next write. One that fails (a timeout, a revoked ownership) is logged, and merging goes
 * back to inline for the rest of the run.
 */
export async function ginMerger(
  client: pg.ClientBase,
  reader: pg.ClientBase,
  tables: string[],
  log: (line: string) => void,
): Promise<GinMerger> {
  let indexes = await cleanableGinIndexes(client, tables)
  let queue: Promise<void> = Promise.resolve()
  let changedSinceMerge = 0
  return {
    active: () => indexes.length > 0,
    afterBatch(changed, stepDone) {
      changedSinceMerge += changed
      if (!indexes.length || changedSinceMerge === 0 || (changedSinceMerge < MERGE_EVERY_ROWS && !stepDone)) return
      changedSinceMerge = 0
      const these = indexes
      queue = queue
        .then(() => cleanPendingLists(reader, these))
        .catch((error) => {
          if (indexes.length)
            log(`merging GIN pending lists between batches failed (${redact(explain(error))}); PostgreSQL merges them inline from now on.`)
          indexes = []
        })
    },
    settled: () => queue,
  }
}
