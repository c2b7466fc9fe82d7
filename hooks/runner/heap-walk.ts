/**
 * Walking `api_requests` in physical order, for a step that only reads it (a scratch step):
 * ranges of pages holding about the batch size in rows, then a catch-up.
 *
 * Why not by key: a key walk visits rows at random in the heap and in TOAST, which on a table
 * larger than memory means a random read per row (at 1M rows, sub-task linking's scan of
 * every response took 40–51 s by key, against 17–23 s for the same read in page order with
 * a cold cache). In page order, rows and their TOASTed bodies, stored as they were inserted,
 * are read nearly in sequence.
 *
 * What it costs: a row the application updates while the walk runs gets its new version
 * elsewhere — perhaps on a page already read — where a key walk would still meet it. So after
 * the last page the walk goes over every page there is then once more, in ranges marked
 * `catchUp`, in which the step must keep only rows whose current version was written at or
 * after a horizon it recorded before the walk began (an xmin test, as the row pass's final
 * pass does). Every other row then costs only its header — its body stays compressed — so
 * those ranges are CATCH_UP_FACTOR times longer. A row may be read in both phases: the
 * step's writes must ignore what they already hold. A row moved again during the catch-up,
 * from a page not yet read to one already read, is missed, as a key walk misses a row written
 * after its key was read. The cursor holds the phase, the next page, the phase's end and the
 * rows per page the ranges are planned with.
 */
import type pg from 'pg'
import type { BatchContext, BatchResult, Cursor, Step } from './backfill.js'
import { estimateRows } from './key-walk.js'

/** A range of pages [from, to) of api_requests; `catchUp`: only rows written since the horizon. */
export interface PageRange {
  from: number
  to: number
  catchUp: boolean
}

export type PageProcessor = (ctx: BatchContext, range: PageRange) => Promise<Omit<BatchResult, 'cursor' | 'examined'>>

/** Pages per catch-up range, as a multiple of a first-phase range: only headers are read. */
const CATCH_UP_FACTOR = 16

// A type, not an interface: the ledger's Cursor (JSON) takes it as it is.
type HeapCursor = {
  phase: 'heap' | 'catch-up'
  page: number
  end: number
  rowsPerPage: number
}

const isHeapCursor = (c: Cursor): c is Cursor & HeapCursor =>
  typeof c === 'object' && c !== null && !Array.isArray(c) && (c.phase === 'heap' || c.phase === 'catch-up')

/** The heap's pages now and its rows per page by the statistics (50 if never analysed). */
async function heapShape(client: pg.ClientBase): Promise<{ pages: number; rowsPerPage: number }> {
  const { rows } = await client.query<{ pages: string; rows_per_page: number }>(
    `select (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::text as pages,
            case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 50 end as rows_per_page
       from pg_class c where c.oid = 'public.api_requests'::regclass`,
  )
  return { pages: Number(rows[0].pages), rowsPerPage: Number(rows[0].rows_per_page) }
}

/**
 * A step that walks `api_requests` in page order and lets `process` handle each range. A
 * cursor of another shape (a key walk's, from older code) starts the walk over: a read-only
 * step repeats nothing it must not.
 */
export function heapWalkStep(name: string, process: PageProcessor): Step {
  return {
    name,
    estimate: (client) => estimateRows(client),
    async runBatch(ctx, cursor) {
      let at: HeapCursor
      if (isHeapCursor(cursor)) at = cursor
      else {
        const shape = await heapShape(ctx.client)
        at = { phase: 'heap', page: 0, end: shape.pages, rowsPerPage: shape.rowsPerPage }
      }
      const catchUp = at.phase === 'catch-up'
      const rows = ctx.settings.batchSize * (catchUp ? CATCH_UP_FACTOR : 1)
      const to = Math.min(at.end, at.page + Math.max(1, Math.ceil(rows / at.rowsPerPage)))
      const result = at.page < to ? await process(ctx, { from: at.page, to, catchUp }) : { changed: 0, skipped: 0 }
      // Progress counts the first phase only: the catch-up reads few rows' bodies.
      const examined = catchUp ? 0 : Math.round((to - at.page) * at.rowsPerPage)
      let next: HeapCursor | null = { ...at, page: to }
      if (to >= at.end) {
        // Every page there is now, those added since the walk began included.
        next = catchUp ? null : { phase: 'catch-up', page: 0, end: (await heapShape(ctx.client)).pages, rowsPerPage: at.rowsPerPage }
      }
      return { ...result, examined, cursor: next }
    },
  }
}

/** SQL predicate selecting the rows of `a` on pages [from, to), with parameters from `$first`. */
export function pageFilter(range: PageRange, first = 1): { sql: string; params: number[] } {
  return {
    sql: `a.ctid >= format('(%s,0)', $${first}::bigint)::tid and a.ctid < format('(%s,0)', $${first + 1}::bigint)::tid`,
    params: [range.from, range.to],
  }
}
