/**
 * One worker of the walk: claims chunks of the heap (state.ts) and walks each in page order,
 * range by range. The next range is read — outside any transaction, on the worker's reader
 * session — while the current one is written, in pieces of at most the batch size in rows
 * (pieces.ts). Each piece is one short transaction holding the UPDATE, the chunk's new
 * position and the participants' ledger progress, so a kill at any moment loses nothing and
 * repeats nothing.
 */
import type pg from 'pg'
import { sleep } from '../../../lib/retry.js'
import type { HookSettings } from '../backfill.js'
import type { BatchSizer } from '../batch-sizer.js'
import { CHECKPOINT_BRACE, type CheckpointWatch } from '../checkpoint-watch.js'
import type { GinMerger } from '../gin-pending.js'
import type { HealthGate } from '../health/throttle.js'
import type { HeapReclaimer } from './reclaim.js'
import { inBatchTransaction } from '../transaction.js'
import { computeBatch } from './compute.js'
import { advanceChunk, type Chunk, claimChunk, heartbeat, type PassState, recordOwnWrite, releaseChunk } from './state.js'
import { firstPiece, inPageOrder, type Piece, plannedDensity } from './pieces.js'
import { batchWrite, type Participant, participantNames, rulePrefix, walkRead } from './sql.js'
import { type BatchCounts, saveBatchProgress, type Tally } from './tally.js'

/** Everything the workers of one process share. */
export interface PassRun {
  participants: Participant[]
  pass: PassState
  settings: HookSettings
  dryRun: boolean
  /** Adaptive batch size, fed by every worker's transactions (all workers counted together). */
  sizer: BatchSizer
  /** Cuts the batch size ahead of a checkpoint's start (checkpoint-watch.ts). */
  checkpoints: CheckpointWatch
  gin: GinMerger
  /** Vacuums the walked part of the heap now and then (reclaim.ts). */
  reclaim: HeapReclaimer
  tally: Tally
  log: (line: string) => void
  /** Rows (estimated from pages) walked by this process, for the progress display. */
  onWalked: (rows: number, batchRows: number) => void
  shouldStop?: () => string | undefined
  /** Asked before every batch transaction, by every worker: waits while the database is unhealthy. */
  health: HealthGate
}

export type WorkerEnd = 'finished' | { stopped: string }

/** A batch whose chunk another runner took over (this one was presumed dead): rolled back. */
class ClaimLost extends Error {}

/** Run one UPDATE for the batch's records; how many rows now hold each participant's value. */
export async function writeRecords(
  client: pg.ClientBase,
  participants: Participant[],
  records: Record<string, unknown>[],
  byTid: boolean,
): Promise<BatchCounts> {
  const written = participants.map(() => 0)
  if (records.length === 0) return { written, rows: 0 }
  const { rows } = await client.query(batchWrite(participants, byTid), [JSON.stringify(records)])
  if (rows.length > 0) await recordOwnWrite(client)
  for (const row of rows) {
    for (const i of participants.keys()) if (row[`${rulePrefix(i)}written`]) written[i]++
  }
  return { written, rows: rows.length }
}

interface ReadBatch {
  from: number
  to: number
  /** The pending rows of pages [from, to), in page order. */
  rows: Record<string, unknown>[]
}

/** Claim and walk chunks until none is free, or a stop is asked for. */
export async function runWalkWorker(run: PassRun, writer: pg.ClientBase, reader: pg.ClientBase, runner: string): Promise<WorkerEnd> {
  const read = walkRead(run.participants)
  for (;;) {
    const chunk = await claimChunk(writer, runner, run.settings.claimLeaseSeconds)
    if (!chunk) return 'finished'
    const end = await walkChunk(run, writer, reader, runner, chunk, read)
    if (end !== 'finished') return end
  }
}

async function walkChunk(
  run: PassRun,
  writer: pg.ClientBase,
  reader: pg.ClientBase,
  runner: string,
  chunk: Chunk,
  read: { sql: string; params: unknown[] },
): Promise<WorkerEnd> {
  const { settings, pass } = run
  const pipelined = reader !== writer
  // Pending rows per page, from the last range read (pieces.ts): the next range is planned
  // with it, so that a dense stretch of the heap is not read in ranges planned for the average.
  let density = plannedDensity(0, 0, pass.rowsPerPage)
  const readFrom = (from: number): Promise<ReadBatch> => {
    const rowsWanted = run.sizer.size()
    // Rounded up: a batch of one page must be able to grow (1.25 × 1 page rounds back to 1).
    const to = Math.min(chunk.endPage, from + Math.max(1, Math.ceil(rowsWanted / density)))
    const p = reader.query(read.sql, [from, to, ...read.params]).then(({ rows }) => {
      density = plannedDensity(rows.length, to - from, pass.rowsPerPage)
      return { from, to, rows: inPageOrder(rows) }
    })
    p.catch(() => {}) // observed below; never an unhandled rejection
    return p
  }
  let ahead: Promise<ReadBatch> | null = chunk.nextPage < chunk.endPage ? readFrom(chunk.nextPage) : null
  // Stopped on request (after a batch, or while waiting for the database's health): free the
  // chunk at once, so that another runner may resume it from its recorded position.
  const stopHere = async (reason: string): Promise<WorkerEnd> => {
    await ahead?.catch(() => {})
    await releaseChunk(writer, chunk.chunk, runner)
    return { stopped: reason }
  }
  if (!ahead) {
    // An empty range (the heap shrank, or a resumed chunk at its end): just mark it done.
    await advanceChunk(writer, chunk.chunk, runner, chunk.endPage, true)
    return 'finished'
  }
  // Rows read but not yet written, from page `pending.from` (the chunk's position) on. The
  // rows after a range's last full piece wait for the next range, once, so that pieces are
  // full ones: a small remainder written alone costs a transaction of its own.
  let pending = { from: chunk.nextPage, rows: [] as Record<string, unknown>[] }
  try {
    while (ahead) {
      const batch = await ahead
      ahead = null
      // Read the next range while this one is written: the ranges are disjoint.
      if (pipelined && batch.to < chunk.endPage) ahead = readFrom(batch.to)
      const endOfChunk = batch.to >= chunk.endPage
      let rest = pending.rows.concat(batch.rows)
      let from = pending.from
      let carried = pending.rows.length
      let wrote = false
      // Pieces of at most the batch size in rows (pieces.ts), each its own transaction; the
      // size is asked again for each piece, so a slow piece shrinks the next.
      for (;;) {
        if (await run.checkpoints.startsSoon(writer)) run.sizer.brace(CHECKPOINT_BRACE)
        const size = run.sizer.size()
        // Left for the next range: a remainder smaller than a piece, read in this range. (A
        // range with no rows at all still moves the position, as a piece of no rows.)
        if (!endOfChunk && carried === 0 && rest.length < size && (rest.length > 0 || wrote)) break
        const piece = firstPiece(rest, from, batch.to, size)
        rest = rest.slice(piece.rows.length)
        from = piece.to
        carried = Math.max(0, carried - piece.rows.length)
        wrote = true
        const last = piece.to >= chunk.endPage
        const end = await writePiece(run, writer, runner, chunk, piece, last)
        if (end === 'taken over') return 'finished'
        if (end.stop) return stopHere(end.stop)
        if (last) return 'finished'
        const stop = run.shouldStop?.()
        if (stop) return stopHere(stop)
        if (piece.to >= batch.to) break
      }
      pending = { from, rows: rest }
      if (!ahead) ahead = readFrom(batch.to)
      if (settings.batchDelayMs > 0) await sleep(settings.batchDelayMs)
    }
    return 'finished'
  } finally {
    await ahead?.catch(() => {})
  }
}

/** Write one piece of a range in its own transaction, moving the chunk's position past it. */
async function writePiece(
  run: PassRun,
  writer: pg.ClientBase,
  runner: string,
  chunk: Chunk,
  piece: Piece<Record<string, unknown>>,
  last: boolean,
): Promise<{ stop?: string } | 'taken over'> {
  const { settings, dryRun, pass } = run
  const computed = computeBatch(run.participants, piece.rows)
  const rowsEstimate = Math.round((piece.to - piece.from) * pass.rowsPerPage)
  // Between batches, outside any transaction (the read-ahead is a plain read). While it
  // waits the chunk's heartbeat goes on, so that no other runner takes the chunk over.
  const gate = await run.health.beforeBatch({
    backfills: participantNames(run.participants),
    keepAlive: dryRun ? undefined : () => heartbeat(writer, runner),
  })
  if (gate.stop) return { stop: gate.stop }
  let counts: BatchCounts
  try {
    counts = await inBatchTransaction(
      writer,
      {
        settings,
        dryRun,
        deferGinMerge: run.gin.active(),
        highWater: pass.highWater,
        onRetry: (attempt, delay) =>
          run.log(`row pass: batch waited too long for a lock; retry ${attempt}/${settings.maxRetries} in ${delay} ms`),
        // The sizer learns from the rows this transaction really wrote.
        onCommitted: (txnMs) => run.sizer.observe(txnMs, Math.max(piece.rows.length, 1)),
      },
      async () => {
        const c = await writeRecords(writer, run.participants, computed.records, true)
        if (!dryRun) {
          if (!(await advanceChunk(writer, chunk.chunk, runner, piece.to, last))) throw new ClaimLost()
          const cursor = { chunk: chunk.chunk, page: piece.to }
          await saveBatchProgress(writer, run.participants, 'walk', cursor, c, computed.counts, rowsEstimate)
        }
        return c
      },
    )
  } catch (error) {
    if (!(error instanceof ClaimLost)) throw error
    run.log(
      `row pass: chunk ${chunk.chunk} was taken over by another runner (no heartbeat for ${settings.claimLeaseSeconds} s); moving on.`,
    )
    return 'taken over'
  }
  // A dry run's batch was rolled back whole; its position is kept in the outer transaction.
  if (dryRun) await advanceChunk(writer, chunk.chunk, runner, piece.to, last)
  run.tally.add(counts, computed.counts)
  run.gin.afterBatch(counts.rows, last)
  run.reclaim.walked(piece.to - piece.from)
  run.onWalked(rowsEstimate, rowsEstimate)
  return {}
}
