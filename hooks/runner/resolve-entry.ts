/**
 * What a backfill's ledger entry says to do now, before any batch: the one decision both
 * runners (batch-runner.ts for steps, row-pass/ for row rules) make the same way.
 *  - `prepare()` throws (invalid input, e.g. the mapping file): failed, recorded, nothing written;
 *  - no entry, another version or another input fingerprint: the entry starts over;
 *  - done at this version and input: nothing to do;
 *  - `prepare()` says skip: recorded as done with its note;
 *  - otherwise: run (or resume) from the entry.
 */
import type pg from 'pg'
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'
import { type Backfill, decidesBeforeRowPass, type HookSettings, type Prepared, WRITING_PHASES } from './backfill.js'
import { type LedgerRow, markDone, markFailed, readEntry, resetEntry } from './ledger.js'

export type Resolution =
  | { kind: 'failed'; error: string; cause: unknown; failureRecorded: boolean }
  | { kind: 'already-done'; note?: string }
  | { kind: 'skipped'; note: string }
  | { kind: 'run'; prepared: Prepared; configKey: string | null; entry: LedgerRow }

export async function resolveEntry(
  client: pg.ClientBase,
  backfill: Backfill,
  settings: HookSettings,
  dryRun: boolean,
): Promise<Resolution> {
  let prepared: Prepared
  try {
    prepared = (await backfill.prepare?.(settings)) ?? {}
  } catch (error) {
    const message = redact(explain(error))
    if (!(await readEntry(client, backfill.name))) await resetEntry(client, backfill.name, backfill.version, null)
    if (!dryRun) await markFailed(client, backfill.name, message)
    return { kind: 'failed', error: message, cause: error, failureRecorded: !dryRun }
  }
  const configKey = prepared.configKey ?? null
  let entry = await readEntry(client, backfill.name)
  const halfWritten = writingDecisions(backfill, entry)
  if (halfWritten && entry && (entry.version !== backfill.version || entry.configKey !== configKey)) {
    const message =
      `backfill "${backfill.name}" is part-way through writing what version ${entry.version} decided (its ledger step is ${halfWritten}), ` +
      `and this code is version ${backfill.version}${entry.configKey !== configKey ? ' with other input' : ''}: starting over now would leave ` +
      'the rows it has already written (half-moved sub-task conversations) for good. Finish it with the code and settings that started it, ' +
      'then deploy this one. Nothing was changed.'
    if (!dryRun) await markFailed(client, backfill.name, message)
    return { kind: 'failed', error: message, cause: new Error(message), failureRecorded: !dryRun }
  }
  if (!entry || entry.version !== backfill.version || entry.configKey !== configKey) {
    await resetEntry(client, backfill.name, backfill.version, configKey)
    entry = (await readEntry(client, backfill.name))!
  }
  if (entry.state === 'done') return { kind: 'already-done', note: entry.note ?? undefined }
  if (prepared.skip) {
    await markDone(client, backfill.name, prepared.skip)
    return { kind: 'skipped', note: prepared.skip }
  }
  return { kind: 'run', prepared, configKey, entry }
}

/**
 * A backfill that decides in steps and writes in the row pass (sub-task linking) must not
 * start over once the pass has begun writing its decisions: the rows written so far would
 * no longer match any decision. The ledger step then names the pass's phase (walk, catch-up).
 */
function writingDecisions(backfill: Backfill, entry: LedgerRow | undefined): string | null {
  if (!entry || entry.state === 'done' || !decidesBeforeRowPass(backfill)) return null
  return entry.step !== null && WRITING_PHASES.includes(entry.step) ? entry.step : null
}
