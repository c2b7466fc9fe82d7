/**
 * Batch size that follows the server: every batch transaction should last about
 * HOOKS_BATCH_TARGET_MS, because the row locks a batch holds are what the application may
 * queue behind. A fixed size cannot promise that — the same 400 rows take 80 ms on an idle
 * server and 300 ms on a busy one, and a row of api_requests costs very different amounts in
 * different steps. So after each committed batch the size for the next read is scaled by
 * target ÷ measured time, within bounds:
 *  - never above HOOKS_BATCH_SIZE (the setting stays the ceiling);
 *  - never below MIN_BATCH_SIZE (or the ceiling, if that is smaller), so progress continues;
 *  - starting at a quarter of the ceiling: the first batches of a step meet a cold cache and
 *    measured the longest transactions of the benchmark when they started at full size;
 *  - at most halved or grown by a quarter per batch: one slow batch (a checkpoint, a merge
 *    on the other session) should not collapse the size, and growth should not overshoot;
 *  - a batch of less than half the current size that stayed within the target is ignored:
 *    the end of a range or of a chunk leaves such a remainder, and scaling from it would
 *    collapse the size (a 10-row remainder done in 10 ms set the next size to 12).
 * HOOKS_BATCH_TARGET_MS=0 keeps the size fixed at HOOKS_BATCH_SIZE.
 *
 * `brace(factor)` cuts the size ahead of a batch known to be dearer per row (a checkpoint
 * starting, checkpoint-watch.ts), instead of learning it from one long transaction; the size
 * then grows back by the rules above.
 */

export const MIN_BATCH_SIZE = 10
const MAX_SHRINK = 0.5
const MAX_GROWTH = 1.25

export interface BatchSizer {
  /** Keys to read for the next batch. */
  size(): number
  /** A batch planned with `size` keys committed after its transaction lasted `txnMs`. */
  observe(txnMs: number, size: number): void
  /** The next batches will cost more per row: scale the size by `factor` now. */
  brace(factor: number): void
}

export function batchSizer(ceiling: number, targetMs: number): BatchSizer {
  const floor = Math.min(MIN_BATCH_SIZE, ceiling)
  let current = targetMs > 0 ? Math.max(floor, Math.round(ceiling / 4)) : ceiling
  return {
    size: () => current,
    observe(txnMs, size) {
      if (targetMs <= 0) return
      if (size < current / 2 && txnMs <= targetMs) return
      const factor = Math.min(MAX_GROWTH, Math.max(MAX_SHRINK, targetMs / Math.max(txnMs, 1)))
      // Scaled from the size that batch really had (a planned batch was sized one batch ago).
      current = Math.max(floor, Math.min(ceiling, Math.round(size * factor)))
    },
    brace(factor) {
      if (targetMs <= 0) return
      current = Math.max(floor, Math.round(current * factor))
    },
  }
}
