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
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'
import { sleep } from '../../lib/retry.js'
import { type Backfill, type BatchContext, type Cursor, type HookSettings, ROW_PASS_PHASES, ROW_PASS_STEP } from './backfill.js'
import { batchSizer } from './batch-sizer.js'
import { markDone, markFailed, markRunning, markStopped, saveProgress, startStep } from './ledger.js'
import { resolveEntry } from './resolve-entry.js'
import { ginMerger, NO_GIN_MERGES } from './gin-pending.js'
import { type HealthGate, NO_THROTTLE } from './health/throttle.js'
import { startProgress } from './progress.js'
import { inBatchTransaction } from './transaction.js'

/**
 * How many times HOOKS_BATCH_SIZE a scratch-only step may read in one batch (see below). Not
 * more: on a table larger than memory one batch's random reads can cost several times the
 * previous one's, and the size adapts only afterwards (with 8 ×, the 1M-row benchmark's
 * longest transaction grew from 487 to 813 ms).
 */
const SCRATCH_STEP_CEILING = 2

export type Outcome = 'done' | 'skipped' | 'already-done' | 'failed' | 'stopped'

export interface BackfillSummary {
  name: string
  outcome: Outcome
  /** Rows changed (would change, in a dry run) by this run. */
  changed: number
  /** Rows skipped as malformed/unresolvable by this run. */
  skipped: number
  durationMs: number
  /** Seconds spent in each step (or phase of the row pass) by this run, for benchmarks and logs. */
  phases?: Record<string, number>
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
  /** A second connection, on which GIN pending lists are merged between batches. */
  reader?: pg.ClientBase
  /** Asked after every committed batch: true ends the run there (SIGTERM/SIGINT), resumable. */
  shouldStop?: () => string | undefined
  /** Asked before every batch transaction: waits while the database is unhealthy (health/throttle.ts). */
  health?: HealthGate
}

export async function runBackfill(client: pg.ClientBase, backfill: Backfill, opts: RunOptions): Promise<BackfillSummary> {
  const started = Date.now()
  const summary: BackfillSummary = { name: backfill.name, outcome: 'done', changed: 0, skipped: 0, durationMs: 0 }
  const finish = (outcome: Outcome, extra: Partial<BackfillSummary> = {}) =>
    Object.assign(summary, { outcome, durationMs: Date.now() - started }, extra)

  const resolution = await resolveEntry(client, backfill, opts.settings, opts.dryRun)
  if (resolution.kind === 'failed') {
    const { error, cause, failureRecorded } = resolution
    return finish('failed', { error, cause, failureRecorded })
  }
  if (resolution.kind !== 'run') return finish(resolution.kind, { note: resolution.note })
  const { prepared, entry } = resolution

  const highWater = await markRunning(client, backfill.name)
  // A backfill with a row rule as well: its steps run before the row pass, which marks it done.
  const thenRowPass = backfill.row !== undefined
  let stepIndex =
    entry.step === null
      ? 0
      : thenRowPass && ROW_PASS_PHASES.includes(entry.step)
        ? backfill.steps.length
        : backfill.steps.findIndex((s) => s.name === entry.step)
  let cursor: Cursor = entry.cursor ?? null
  if (stepIndex < 0) {
    // The code's steps changed under a half-done run without a version bump. Steps are
    // idempotent, so starting over is safe; it is only slower.
    opts.log(`${backfill.name}: unknown step "${entry.step}" in the ledger; starting this backfill over.`)
    stepIndex = 0
    cursor = null
  }

  const ctx: BatchContext = { client, dryRun: opts.dryRun, settings: opts.settings, input: prepared.input, log: opts.log }
  // GIN pending lists are merged between batches, not inside them (see gin-pending.ts): on the
  // reader, whose session has the batch timeouts; never in a dry run.
  const gin =
    opts.reader && !opts.dryRun
      ? await ginMerger(client, opts.reader, backfill.tables, (line) => opts.log(`${backfill.name}: ${line}`))
      : NO_GIN_MERGES
  try {
    for (; stepIndex < backfill.steps.length; stepIndex++) {
      const step = backfill.steps[stepIndex]
      const isLast = stepIndex === backfill.steps.length - 1
      const label = backfill.steps.length > 1 ? `${backfill.name} (${step.name})` : backfill.name
      const total = step.estimate ? await step.estimate(client, opts.settings) : 0
      if (!opts.dryRun) await startStep(client, backfill.name, total, cursor !== null)
      const progress = startProgress({ label, total, log: opts.log, intervalMs: opts.settings.progressIntervalMs, tty: opts.tty })
      const stepStarted = Date.now()
      // Sized per step: a row costs very different amounts in different steps. HOOKS_BATCH_SIZE
      // caps how many application rows one transaction locks; a scratch-only step locks none
      // (it reads api_requests and writes its own tables), so it may read more, still held to
      // the time target.
      const ceiling = opts.settings.batchSize * (step.scratchOnly && opts.settings.batchTargetMs > 0 ? SCRATCH_STEP_CEILING : 1)
      const sizer = batchSizer(ceiling, opts.settings.batchTargetMs)
      let examined = 0
      // Stopped on request (after a batch, or while waiting for the database's health): resumable.
      const stopHere = async (note: string) => {
        await gin.settled()
        if (!opts.dryRun) await markStopped(client, backfill.name, note)
        return finish('stopped', { note })
      }
      try {
        for (;;) {
          // Between batches, outside any transaction: the wait holds no lock but the hooks lock.
          const gate = await (opts.health ?? NO_THROTTLE).beforeBatch({ backfills: [backfill.name] })
          if (gate.stop) return stopHere(gate.stop)
          // One size for the whole batch: the step reads settings.batchSize of its context.
          const size = sizer.size()
          const batchCtx = size === ctx.settings.batchSize ? ctx : { ...ctx, settings: { ...ctx.settings, batchSize: size } }
          const result = await inBatchTransaction(
            client,
            {
              settings: opts.settings,
              dryRun: opts.dryRun,
              deferGinMerge: gin.active(),
              highWater,
              keepInDryRun: step.scratchOnly === true,
              onRetry: (attempt, delay) =>
                opts.log(`${label}: batch waited too long for a lock; retry ${attempt}/${opts.settings.maxRetries} in ${delay} ms`),
              onCommitted: (txnMs) => sizer.observe(txnMs, size),
            },
            async () => {
              const r = await step.runBatch(batchCtx, cursor)
              const finished = r.cursor === null
              await saveProgress(client, backfill.name, {
                step: finished ? (backfill.steps[stepIndex + 1]?.name ?? (thenRowPass ? ROW_PASS_STEP : null)) : step.name,
                cursor: r.cursor,
                changed: r.changed,
                skipped: r.skipped,
                examined: r.examined ?? 0,
              })
              if (finished && isLast && !thenRowPass) await markDone(client, backfill.name)
              return r
            },
          )
          gin.afterBatch(result.changed, result.cursor === null)
          summary.changed += result.changed
          summary.skipped += result.skipped
          examined += result.examined ?? 0
          progress.update(examined, size)
          cursor = result.cursor
          // Asked to stop: honoured after any batch with work still ahead — also the last
          // batch of a step, else a run whose steps each take one batch would never stop.
          const stop = cursor === null && isLast && !thenRowPass ? undefined : opts.shouldStop?.()
          if (stop) return stopHere(stop)
          if (cursor === null) break
          if (opts.settings.batchDelayMs > 0) await sleep(opts.settings.batchDelayMs)
        }
      } finally {
        progress.stop()
        summary.phases = { ...summary.phases, [step.name]: (Date.now() - stepStarted) / 1000 }
      }
    }
    await gin.settled()
    // The last batch of the last step marked the backfill done; only a step-less one is left.
    if (backfill.steps.length === 0 && !thenRowPass) await markDone(client, backfill.name)
    return finish('done')
  } catch (error) {
    await gin.settled()
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
