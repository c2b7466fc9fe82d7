/**
 * Where a step's batches come from. The runner (batch-runner.ts) asks for the next batch, runs
 * it inside the batch transaction, then says which cursor committed; these sources decide
 * what a batch is:
 *  - a plain `Step`: the whole batch (read, compute, write) runs in the transaction;
 *  - a `PlannedStep`: the read phase runs outside it, one batch ahead on the reader session,
 *    so the transaction holds only the write.
 */
import type { BatchContext, BatchResult, Cursor, HookSettings, Planned, PlannedStep, ReadContext, Step } from './backfill.js'

export type BatchOutcome = BatchResult & { cursor: Cursor }

/** The batch size to use for the next read (see batch-sizer.ts). */
export type SizeSource = () => number

/** `ctx` with settings.batchSize = `size`: a step reads one consistent size for a whole batch. */
function sized<C extends { settings: HookSettings }>(ctx: C, size: number): C {
  return size === ctx.settings.batchSize ? ctx : { ...ctx, settings: { ...ctx.settings, batchSize: size } }
}

/**
 * The batches of one step, one at a time. `next()` gives the batch to write now and the size
 * it was read with; `run()` is called inside the batch transaction. `advance()` says which
 * cursor was committed (a planned step starts reading the batch after it then, if it has not
 * already), `abandon()` that the step stops (its read-ahead, if any, is waited for and its
 * failure ignored).
 */
export interface Batches {
  next(): Promise<{ size: number; run(): Promise<BatchOutcome> }>
  advance(cursor: Cursor): void
  abandon(): Promise<void>
}

/** A plain step: the whole batch runs in the transaction. */
export function singleBatches(step: Step, ctx: BatchContext, start: Cursor, sizeNow: SizeSource): Batches {
  let cursor = start
  return {
    async next() {
      const size = sizeNow()
      return { size, run: () => step.runBatch(sized(ctx, size), cursor) }
    },
    advance: (c) => {
      cursor = c
    },
    abandon: async () => {},
  }
}

/**
 * A planned step, pipelined: while batch N is written on the main connection, batch N+1 is
 * read and computed on the reader. Key ranges of consecutive batches are disjoint, so the
 * read ahead never depends on the write in flight. (With a single connection, reads simply
 * alternate with writes.)
 */
export function plannedBatches(step: PlannedStep, ctx: BatchContext, readCtx: ReadContext, start: Cursor, sizeNow: SizeSource): Batches {
  const pipelined = readCtx.client !== ctx.client
  const plan = (cursor: Cursor) => {
    const size = sizeNow()
    const promise = step.plan(sized(readCtx, size), cursor).then((planned) => ({ planned, size }))
    promise.catch(() => {}) // observed by next()/abandon(); never an unhandled rejection
    return promise
  }
  let ahead: Promise<{ planned: Planned; size: number }> | null = plan(start)
  return {
    async next() {
      const { planned, size } = await ahead!
      ahead = null
      if (pipelined && planned.cursor !== null) ahead = plan(planned.cursor)
      return {
        size,
        run: async () => {
          const { changed } = await step.apply(sized(ctx, size), planned.work)
          return { changed, skipped: planned.skipped, examined: planned.examined, cursor: planned.cursor }
        },
      }
    },
    advance(cursor) {
      if (!ahead) ahead = plan(cursor)
    },
    async abandon() {
      await ahead?.catch(() => {})
    },
  }
}
