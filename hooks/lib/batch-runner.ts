/**
 * Runs one backfill to completion (or failure), batch by batch, keeping the ledger exact.
 *
 * Resumption rules:
 *  - no ledger row, a different `version`, or a different input fingerprint (`configKey`):
 *    start over from the first step;
 *  - `done` at the same version and input: nothing to do;
 *  - otherwise (pending, running = interrupted, failed): resume at the stored step and cursor.
 *
 * Every batch's changes and its ledger update commit together, and the final batch also marks
 * the backfill done, so there is no moment at which a kill loses or repeats work.
 */
import type pg from 'pg'
import { explain } from '../../scripts/lib/errors.js'
import { redact } from '../../scripts/lib/redact.js'
import { isPlanned, type Planned, type BatchContext, type BatchResult, type Backfill, type Cursor, type HookSettings, type PlannedStep, type Prepared, type ReadContext, type Step } from './backfill.js'
import { markDone, markFailed, markRunning, readEntry, resetEntry, saveProgress } from './ledger.js'
import { cleanableGinIndexes, cleanPendingLists, MERGE_EVERY_ROWS } from './gin-pending.js'
import { startProgress } from './progress.js'
import { inBatchTransaction } from './transaction.js'

export type Outcome = 'done' | 'skipped' | 'already-done' | 'failed'

export interface BackfillSummary {
  name: string
  outcome: Outcome
  /** Rows changed (would change, in a dry run) by this run. */
  changed: number
  /** Rows skipped as malformed/unresolvable by this run. */
  skipped: number
  durationMs: number
  note?: string
  /** One-paragraph, password-free failure message. */
  error?: string
  /** The original error (its stack is printed with DEBUG set). */
  cause?: unknown
  /**
   * For a failure: whether it could be written to the ledger. Not when the connection itself
   * was lost; the ledger then still says `running`, which the next run treats the same way.
   */
  failureRecorded?: boolean
}

export interface RunOptions {
  settings: HookSettings
  dryRun: boolean
  log: (line: string) => void
  /** Live progress bars (a terminal) or periodic lines. */
  tty: boolean
  /** A second connection for planned steps' reads (without it they read on the main one). */
  reader?: pg.ClientBase
}

type BatchOutcome = BatchResult & { cursor: Cursor }

/**
 * The batches of one step, one at a time. `next()` gives the batch to write now; `run()` is
 * called inside the batch transaction. `advance()` says which cursor was committed (a planned
 * step starts reading the batch after it then, if it has not already), `abandon()` that the
 * step stops (its read-ahead, if any, is waited for and its failure ignored).
 */
interface Batches {
  next(): Promise<{ run(): Promise<BatchOutcome> }>
  advance(cursor: Cursor): void
  abandon(): Promise<void>
}

/** A plain step: the whole batch runs in the transaction. */
function singleBatches(step: Step, ctx: BatchContext, start: Cursor): Batches {
  let cursor = start
  return {
    next: async () => ({ run: () => step.runBatch(ctx, cursor) }),
    advance: (c) => void (cursor = c),
    abandon: async () => {},
  }
}

/**
 * A planned step, pipelined: while batch N is written on the main connection, batch N+1 is
 * read and computed on the reader. Key ranges of consecutive batches are disjoint, so the
 * read ahead never depends on the write in flight. (With a single connection, reads simply
 * alternate with writes.)
 */
function plannedBatches(step: PlannedStep, ctx: BatchContext, readCtx: ReadContext, start: Cursor): Batches {
  const pipelined = readCtx.client !== ctx.client
  const plan = (cursor: Cursor) => {
    const promise = step.plan(readCtx, cursor)
    promise.catch(() => {}) // observed by next()/abandon(); never an unhandled rejection
    return promise
  }
  let ahead: Promise<Planned> | null = plan(start)
  return {
    async next() {
      const planned = await ahead!
      ahead = null
      if (pipelined && planned.cursor !== null) ahead = plan(planned.cursor)
      return {
        run: async () => {
          const { changed } = await step.apply(ctx, planned.work)
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runBackfill(client: pg.ClientBase, backfill: Backfill, opts: RunOptions): Promise<BackfillSummary> {
  const started = Date.now()
  const summary: BackfillSummary = { name: backfill.name, outcome: 'done', changed: 0, skipped: 0, durationMs: 0 }
  const finish = (outcome: Outcome, extra: Partial<BackfillSummary> = {}) =>
    Object.assign(summary, { outcome, durationMs: Date.now() - started }, extra)

  let prepared: Prepared
  try {
    prepared = (await backfill.prepare?.(opts.settings)) ?? {}
  } catch (error) {
    // Invalid input (e.g. the mapping file): nothing has been written; record why.
    const message = redact(explain(error))
    if (!(await readEntry(client, backfill.name))) await resetEntry(client, backfill.name, backfill.version, null)
    if (!opts.dryRun) await markFailed(client, backfill.name, message)
    return finish('failed', { error: message, cause: error, failureRecorded: !opts.dryRun })
  }
  const configKey = prepared.configKey ?? null

  let entry = await readEntry(client, backfill.name)
  if (!entry || entry.version !== backfill.version || entry.configKey !== configKey) {
    await resetEntry(client, backfill.name, backfill.version, configKey)
    entry = (await readEntry(client, backfill.name))!
  }
  if (entry.state === 'done') return finish('already-done', { note: entry.note ?? undefined })
  if (prepared.skip) {
    await markDone(client, backfill.name, prepared.skip)
    return finish('skipped', { note: prepared.skip })
  }

  await markRunning(client, backfill.name)
  let stepIndex = entry.step === null ? 0 : backfill.steps.findIndex((s) => s.name === entry.step)
  let cursor: Cursor = entry.cursor ?? null
  if (stepIndex < 0) {
    // The code's steps changed under a half-done run without a version bump. Steps are
    // idempotent, so starting over is safe; it is only slower.
    opts.log(`${backfill.name}: unknown step "${entry.step}" in the ledger; starting this backfill over.`)
    stepIndex = 0
    cursor = null
  }

  const ctx: BatchContext = { client, dryRun: opts.dryRun, settings: opts.settings, input: prepared.input, log: opts.log }
  // Planned steps read on the second connection, one batch ahead of the writes. A dry run
  // reads on the main one, inside its rolled-back transaction, so that it sees what the
  // earlier backfills would have written.
  const readCtx: ReadContext = { client: opts.reader && !opts.dryRun ? opts.reader : client, settings: opts.settings, input: prepared.input }
  // GIN pending lists are merged between batches, not inside them (see gin-pending.ts). On
  // the reader, whose session has the batch timeouts; never in a dry run.
  let ginIndexes = opts.reader && !opts.dryRun ? await cleanableGinIndexes(client, backfill.tables) : []
  // Merges are queued on the reader behind its read-ahead, so they overlap the next write. One
  // that fails (a timeout, a revoked ownership) is reported and merging goes back to inline.
  let merging: Promise<void> = Promise.resolve()
  let changedSinceMerge = 0
  const mergeGinPendingLists = () => {
    const indexes = ginIndexes
    merging = merging
      .then(() => (indexes.length ? cleanPendingLists(opts.reader!, indexes) : undefined))
      .catch((error) => {
        if (ginIndexes.length) opts.log(`${backfill.name}: merging GIN pending lists between batches failed (${redact(explain(error))}); PostgreSQL merges them inline from now on.`)
        ginIndexes = []
      })
  }
  try {
    for (; stepIndex < backfill.steps.length; stepIndex++) {
      const step = backfill.steps[stepIndex]
      const isLast = stepIndex === backfill.steps.length - 1
      const label = backfill.steps.length > 1 ? `${backfill.name} (${step.name})` : backfill.name
      const total = step.estimate ? await step.estimate(client, opts.settings) : 0
      const progress = startProgress({ label, total, log: opts.log, intervalMs: opts.settings.progressIntervalMs, tty: opts.tty })
      const batches = isPlanned(step) ? plannedBatches(step, ctx, readCtx, cursor) : singleBatches(step, ctx, cursor)
      let examined = 0
      try {
        for (;;) {
          const batch = await batches.next()
          const result = await inBatchTransaction(
            client,
            {
              settings: opts.settings,
              dryRun: opts.dryRun,
              deferGinMerge: ginIndexes.length > 0,
              onRetry: (attempt, delay) =>
                opts.log(`${label}: batch waited too long for a lock; retry ${attempt}/${opts.settings.maxRetries} in ${delay} ms`),
            },
            async () => {
              const r = await batch.run()
              const finished = r.cursor === null
              await saveProgress(client, backfill.name, {
                step: finished ? (backfill.steps[stepIndex + 1]?.name ?? null) : step.name,
                cursor: r.cursor,
                changed: r.changed,
                skipped: r.skipped,
              })
              if (finished && isLast) await markDone(client, backfill.name)
              return r
            },
          ).catch(async (error) => {
            await batches.abandon()
            throw error
          })
          changedSinceMerge += result.changed
          if (ginIndexes.length && (changedSinceMerge >= MERGE_EVERY_ROWS || (result.cursor === null && changedSinceMerge > 0))) {
            changedSinceMerge = 0
            mergeGinPendingLists()
          }
          summary.changed += result.changed
          summary.skipped += result.skipped
          examined += result.examined ?? 0
          progress.update(examined)
          cursor = result.cursor
          if (cursor === null) break
          batches.advance(cursor)
          if (opts.settings.batchDelayMs > 0) await sleep(opts.settings.batchDelayMs)
        }
      } finally {
        progress.stop()
      }
    }
    await merging
    // The last batch of the last step marked the backfill done; only a step-less one is left.
    if (backfill.steps.length === 0) await markDone(client, backfill.name)
    return finish('done')
  } catch (error) {
    await merging
    const message = redact(explain(error))
    const failureRecorded = opts.dryRun
      ? false
      : await markFailed(client, backfill.name, message).then(
          () => true,
          () => false,
        )
    return finish('failed', { error: message, cause: error, failureRecorded })
  }
}
