/**
 * The final pass, after every chunk is walked. Rows the application updated while the walk
 * ran got a new version elsewhere in the heap — perhaps on a page already walked, or beyond
 * the pages the walk covered — and may have been missed. Only a row whose current version was
 * written after the walk began (and not by the pass itself) can have moved, so this pass reads
 * the heap again in physical order, but only cheap columns and `xmin` (bodies stay compressed
 * unless a row matches), and handles the rows it finds by key, under the same high-water rule.
 *
 * All its reads run in ONE repeatable-read snapshot on the reader session: under one snapshot
 * every row is seen exactly once, as it was then, even if the application moves it again
 * while this pass runs (a pass of many statements with a snapshot each could miss a row moved
 * from a page not yet read to one already read). The writes are ordinary batch transactions
 * matched by request_id, so they apply to the row's latest version and re-check its guard.
 * The snapshot is held only for this pass (seconds to minutes), never for the walk, which
 * would hold back vacuum on the proxy's tables for hours.
 *
 * (An index per rule — `system_hash is null` … — was the first design: at 1M rows the
 * candidates it returned were spread over most of the heap, and one statement needed more
 * than HOOKS_STATEMENT_TIMEOUT_MS.)
 *
 * Interrupted, it starts again from the first page, with a new snapshot: it is cheap, and rows
 * handled before the interruption are no longer pending.
 */
import type pg from 'pg'
import { inBatchTransaction } from '../transaction.js'
import { computeBatch } from './compute.js'
import { catchUpRead, participantNames } from './sql.js'
import { heapPages, ownTransactions } from './state.js'
import { saveBatchProgress } from './tally.js'
import { type PassRun, type WorkerEnd, writeRecords } from './walk.js'

/** Pages per read: the filter reads no body, so many pages fit in one short statement. */
const FIRST_PAGES = 512
const MAX_PAGES = 65_536
/** Aimed duration of one read statement. */
const READ_TARGET_MS = 200

export async function runCatchUp(run: PassRun, writer: pg.ClientBase, reader: pg.ClientBase): Promise<WorkerEnd> {
  // A wait for the database's health (a batch's throttle) ends the snapshot first: a waiting
  // runner holds no transaction. The pass then starts again from the first page with a new
  // one, as after an interruption — rows written before the wait are no longer pending.
  for (;;) {
    const end = await catchUpOnce(run, writer, reader)
    if (end !== 'waited') return end
  }
}

async function catchUpOnce(run: PassRun, writer: pg.ClientBase, reader: pg.ClientBase): Promise<WorkerEnd | 'waited'> {
  const { sql, params } = catchUpRead(run.participants)
  // A dry run reads in its own (already open) transaction.
  const snapshot = !run.dryRun
  let open = snapshot
  if (snapshot) await reader.query('begin isolation level repeatable read read only')
  const release = async () => {
    if (!open) return
    open = false
    await reader.query('commit')
  }
  try {
    // (The reader's session already carries the high-water mark, see run-pass.ts.)
    // Every page there is now, including those added since the walk began. A dry run wrote
    // nothing, so every row it counted on the walked pages is still pending — and a candidate
    // here too if the application touched it since the walk began: reading those pages again
    // would count it twice. A dry run's final pass reads only the pages added since its walk
    // began.
    const pages = await heapPages(reader)
    const own = await ownTransactions(reader)
    let step = FIRST_PAGES
    for (let from = run.dryRun ? run.pass.totalPages : 0; from < pages; ) {
      const to = Math.min(pages, from + step)
      const started = performance.now()
      const { rows } = await reader.query(sql, [from, to, run.pass.startSnapshot, own, ...params])
      const ms = performance.now() - started
      step = Math.min(MAX_PAGES, Math.max(1, Math.round(step * Math.min(2, Math.max(0.5, READ_TARGET_MS / Math.max(ms, 1))))))
      if (rows.length) {
        const end = await writeCandidates(run, writer, rows, to, release)
        if (end !== 'finished') return end
      }
      from = to
    }
    return 'finished'
  } finally {
    if (open) await reader.query('commit').catch(() => {})
  }
}

/** Handle the rows one read found, in batches of the shared batch size, by key. */
async function writeCandidates(
  run: PassRun,
  writer: pg.ClientBase,
  rows: Record<string, unknown>[],
  page: number,
  release: () => Promise<void>,
): Promise<WorkerEnd | 'waited'> {
  for (let i = 0; i < rows.length; ) {
    const gate = await run.health.beforeBatch({ backfills: participantNames(run.participants), release })
    if (gate.stop) return { stopped: gate.stop }
    if (gate.waited) return 'waited'
    const size = run.sizer.size()
    const batch = rows.slice(i, i + size)
    i += batch.length
    const computed = computeBatch(run.participants, batch)
    // Skips are the walk's to count: a row found here may have been seen (and counted) there.
    const found = computed.counts.map((c) => ({ ...c, skipped: 0 }))
    const counts = await inBatchTransaction(
      writer,
      {
        settings: run.settings,
        dryRun: run.dryRun,
        // Few rows: PostgreSQL merges their GIN entries as usual (the reader, where merges run,
        // is holding this pass's snapshot).
        deferGinMerge: false,
        highWater: run.pass.highWater,
        onCommitted: (txnMs) => run.sizer.observe(txnMs, Math.max(batch.length, 1)),
      },
      async () => {
        const c = await writeRecords(writer, run.participants, computed.records, false)
        if (!run.dryRun) await saveBatchProgress(writer, run.participants, 'catch-up', { page }, c, found, batch.length)
        return c
      },
    )
    run.tally.add(counts, found)
  }
  return 'finished'
}
