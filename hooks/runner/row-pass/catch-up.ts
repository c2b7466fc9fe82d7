/**
 * The final pass, after every chunk is walked: rows the application updated while the walk ran
 * may have moved (a new row version elsewhere in the heap) from a page not yet walked to one
 * already walked, and been missed. Only rows whose current version was written after the walk
 * began can have moved, so the pass looks, through each rule's index (`catchUp`), at pending
 * rows with such a version — usually a handful — and handles them by key, under the same
 * high-water rule as the walk. Rows the walk already handled are not pending any more; a row
 * handled twice is written once, because every write re-checks its guard.
 */
import type pg from 'pg'
import { HIGH_WATER_SETTING } from '../high-water.js'
import { inBatchTransaction } from '../transaction.js'
import { computeBatch } from './compute.js'
import { saveCatchUpCursor } from './state.js'
import { catchUpRead } from './sql.js'
import { saveBatchProgress } from './tally.js'
import { type PassRun, writeRecords } from './walk.js'

/** Read one page of candidates: an index scan (the planner is told not to scan the heap). */
async function readCandidates(
  run: PassRun,
  reader: pg.ClientBase,
  after: string | null,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const { sql, params } = catchUpRead(run.participants)
  const values = [after, limit, run.pass.xminThreshold, ...params]
  // Outside any transaction (it takes no row lock); the planner hint holds for this statement
  // only. In a dry run the reader is the dry run's own session, already in its transaction.
  await reader.query(`select set_config('enable_seqscan', 'off', false), set_config($1, $2, false)`, [
    HIGH_WATER_SETTING,
    run.pass.highWater,
  ])
  try {
    return (await reader.query(sql, values)).rows
  } finally {
    await reader.query('reset enable_seqscan')
  }
}

export async function runCatchUp(run: PassRun, writer: pg.ClientBase, reader: pg.ClientBase): Promise<void> {
  let after = run.pass.catchUpAfter
  for (;;) {
    const limit = run.sizer.size()
    const rows = await readCandidates(run, reader, after, limit)
    if (rows.length === 0) return
    const computed = computeBatch(run.participants, rows)
    // Skips are the walk's to count: a row found here may have been seen (and counted) there,
    // since a candidate is any row written after the oldest transaction open when it began.
    const found = computed.counts.map((c) => ({ ...c, skipped: 0 }))
    // The greatest key (canonical uuid text sorts like the uuid).
    const last = rows
      .map((r) => String(r.id))
      .sort()
      .at(-1)!
    const counts = await inBatchTransaction(
      writer,
      {
        settings: run.settings,
        dryRun: run.dryRun,
        deferGinMerge: run.gin.active(),
        highWater: run.pass.highWater,
        onCommitted: (txnMs) => run.sizer.observe(txnMs, Math.max(rows.length, 1)),
      },
      async () => {
        const c = await writeRecords(writer, run.participants, computed.records, false)
        if (!run.dryRun) {
          await saveCatchUpCursor(writer, last)
          await saveBatchProgress(writer, run.participants, 'catch-up', { after: last }, c, found, rows.length)
        }
        return c
      },
    )
    run.tally.add(counts, found)
    run.gin.afterBatch(counts.rows, rows.length < limit)
    after = last
    if (rows.length < limit) return
  }
}
