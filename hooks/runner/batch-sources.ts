/**
 * Where a step's batches come from. The runner (batch-runner.ts) asks for the next batch, runs
 * it inside the batch transaction, then says which cursor committed: a step's whole batch
 * (read, compute, write) runs in the transaction. (The per-row backfills, whose reads cost as
 * much as their writes, read outside it, one batch ahead: see row-pass/walk.ts.)
 */
import type { BatchContext, BatchResult, Cursor, HookSettings, Step } from './backfill.js'

export type BatchOutcome = BatchResult & { cursor: Cursor }

/** The batch size to use for the next read (see batch-sizer.ts). */
export type SizeSource = () => number

/** `ctx` with settings.batchSize = `size`: a step reads one consistent size for a whole batch. */
function sized<C extends { settings: HookSettings }>(ctx: C, size: number): C {
  return size === ctx.settings.batchSize ? ctx : { ...ctx, settings: { ...ctx.settings, batchSize: size } }
}

/**
 * The batches of one step, one at a time. `next()` gives the batch to run now and its size;
 * `run()` is called inside the batch transaction. `advance()` says which cursor was committed,
 * `abandon()` that the step stops.
 */
export interface Batches {
  next(): Promise<{ size: number; run(): Promise<BatchOutcome> }>
  advance(cursor: Cursor): void
  abandon(): Promise<void>
}

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
