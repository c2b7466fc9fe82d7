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
import type { BatchContext, BatchResult, Cursor, Step } from './backfill.js'

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
