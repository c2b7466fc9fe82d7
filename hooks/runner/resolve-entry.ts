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
import type { Backfill, HookSettings, Prepared } from './backfill.js'
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
