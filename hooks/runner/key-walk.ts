/**
 * Walking `api_requests` by primary key, one range of at most `batchSize` keys per batch
 * (the runner chooses the size per batch, see batch-sizer.ts).
 *
 * The next range is chosen by the primary-key index alone (no filter, no heap access beyond
 * visibility), so choosing it costs the same whether the remaining rows need work or not. The
 * module then filters and updates *inside* (after, upTo] — one short statement on at most
 * `batchSize` rows. Nothing ever holds more than one batch of keys in memory.
 */
import type pg from 'pg'
import type { BatchContext, BatchResult, Cursor, PlannedStep, ReadContext, Step } from './backfill.js'
import { preExisting } from './high-water.js'

export interface KeyRange {
  /** Keys in the range (for progress). */
  count: number
  /** The last (greatest) key: the range's inclusive upper bound. */
  last: string
}

/** The next range of at most `limit` keys after `after` (null: from the start), or null at the end. */
export async function nextKeyRange(
  client: pg.ClientBase,
  after: string | null,
  limit: number,
  table = 'public.api_requests',
  key = 'request_id',
): Promise<KeyRange | null> {
  const where = after === null ? '' : `where ${key} > $2`
  const params: unknown[] = after === null ? [limit] : [limit, after]
  const { rows } = await client.query<{ count: number; last: string | null }>(
    `with r as (select ${key} as k from ${table} ${where} order by ${key} limit $1)
     select count(*)::int as count, (select k::text from r order by k desc limit 1) as last from r`,
    params,
  )
  const { count, last } = rows[0]
  return count === 0 || last === null ? null : { count, last }
}

/** Rows of `api_requests` per the planner's statistics (exact count when never analysed). */
export async function estimateRows(client: pg.ClientBase, table = 'public.api_requests'): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`select reltuples::float8 as n from pg_class where oid = to_regclass($1)`, [table])
  const n = rows[0]?.n ?? 0
  if (n >= 0) return Math.round(n)
  // -1: never vacuumed/analysed (fresh database). Counting is cheap exactly when that happens.
  const { rows: counted } = await client.query<{ n: number }>(`select count(*)::int as n from ${table}`)
  return counted[0].n
}

export type RangeProcessor = (ctx: BatchContext, after: string | null, upTo: string) => Promise<BatchResult>

/**
 * A step that walks `api_requests` by request_id and lets `process` handle each range
 * (after, upTo]. The cursor is the last key done, as text.
 */
export function keyWalkStep(name: string, process: RangeProcessor): Step {
  return {
    name,
    estimate: (client) => estimateRows(client),
    async runBatch(ctx, cursor) {
      const after = typeof cursor === 'string' ? cursor : null
      const range = await nextKeyRange(ctx.client, after, ctx.settings.batchSize)
      if (!range) return { changed: 0, skipped: 0, examined: 0, cursor: null }
      const result = await process(ctx, after, range.last)
      // A short range is the last one: finishing now saves an empty round trip.
      const next: Cursor = range.count < ctx.settings.batchSize ? null : range.last
      return { ...result, examined: range.count, cursor: next }
    },
  }
}

/**
 * SQL predicate selecting keys in (after, upTo] — after null meaning from the very first key
 * (the nil uuid included) — with its parameters, numbered from `$first`.
 */
export function rangeFilter(after: string | null, upTo: string, first = 1, column = 'request_id'): { sql: string; params: string[] } {
  return after === null
    ? { sql: `${column} <= $${first}::uuid`, params: [upTo] }
    : { sql: `${column} > $${first}::uuid and ${column} <= $${first + 1}::uuid`, params: [after, upTo] }
}

export type WorkWriter<W> = (ctx: BatchContext, work: W[]) => Promise<number>

/** One row's new value for a single column, keyed by request_id. */
export interface ColumnValue {
  id: string
  value: string
}

/**
 * A writer that sets api_requests.`column` (of SQL type `type`) from the batch's values, only
 * where it is still NULL: the application may have filled it since the read, and its value wins;
 * and only in rows that existed when the backfill started.
 */
export function fillWhereNull(column: string, type: string): WorkWriter<ColumnValue> {
  const sql = `update public.api_requests a set ${column} = v.value
  from unnest($1::uuid[], $2::${type}[]) as v(id, value)
  where a.request_id = v.id and a.${column} is null and ${preExisting('a')}`
  return async (ctx, work) => (await ctx.client.query(sql, [work.map((w) => w.id), work.map((w) => w.value)])).rowCount ?? 0
}

export interface PlannedWalk<R extends { id: string }, W> {
  /**
   * The read, given its WHERE tail: `select … as id, … from public.api_requests <alias> where ${page}`.
   * `page` selects the next batch of keys in key order (`<column> > $2 order by <column>
   * limit $1`), so the query must return one row per key with the key as text in `id`, and
   * compute the expensive expressions only for rows that still need the change (`case when
   * <pending> then … end`): one index walk, and each body decompressed at most once.
   */
  select: (page: string) => string
  /** The walked key column as the query names it (default `request_id`; e.g. `a.request_id`). */
  column?: string
  /** What the page's rows need: the work to write and the rows skipped as malformed. */
  compute: (rows: R[], ctx: ReadContext) => { work: W[]; skipped: number }
  /** Apply the work inside the batch transaction, re-checking each row; rows changed. */
  write: WorkWriter<W>
}

/**
 * The two-phase form of `keyWalkStep` (see PlannedStep): the read phase fetches the next page
 * of keys together with what they need, outside the transaction (on the read-ahead session);
 * the write phase applies it — only where a row still needs it — inside.
 */
export function keyWalkPlannedStep<R extends { id: string }, W>(name: string, walk: PlannedWalk<R, W>): PlannedStep {
  const column = walk.column ?? 'request_id'
  return {
    name,
    estimate: (client) => estimateRows(client),
    async plan(ctx, cursor) {
      const after = typeof cursor === 'string' ? cursor : null
      const page = `${after === null ? 'true' : `${column} > $2::uuid`} order by ${column} limit $1`
      const params: unknown[] = after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after]
      const { rows } = await ctx.client.query<R>(walk.select(page), params)
      const { work, skipped } = walk.compute(rows, ctx)
      // A short page is the last one: finishing now saves an empty round trip. The greatest
      // key, whatever order the rows came in (canonical uuid text sorts like the uuid).
      const last = rows.reduce<string | null>((max, r) => (max === null || r.id > max ? r.id : max), null)
      return { work, skipped, examined: rows.length, cursor: rows.length < ctx.settings.batchSize ? null : last }
    },
    async apply(ctx, work) {
      const rows = work as W[]
      return { changed: rows.length ? await walk.write(ctx, rows) : 0 }
    },
  }
}
