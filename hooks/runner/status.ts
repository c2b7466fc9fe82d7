/**
 * `db:status`'s view of the backfills: one line each, and whether everything is done.
 * Read-only, and usable before the first hook run (no ledger yet).
 */
import type pg from 'pg'
import { advisoryLockHolder, type LockHolder } from '../../lib/advisory-lock.js'
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'
import type { Backfill, HookSettings } from './backfill.js'
import { connect } from './sessions.js'
import { relationExists } from '../../lib/catalog-probe.js'
import { HOOKS_LOCK_KEY } from './hooks-lock.js'
import { ledgerExists, readLedger, type LedgerRow } from './ledger.js'
import { clockTime } from './health/throttle.js'
import { formatDuration } from './progress.js'
import { describePass } from './row-pass/state.js'
import { loadSettings } from './settings.js'

export interface HookStatus {
  clean: boolean
  lines: string[]
}

/** The config key a run would use now, or the reason the input is unusable. */
async function currentConfigKey(backfill: Backfill, settings: HookSettings): Promise<{ key: string | null } | { error: string }> {
  try {
    return { key: (await backfill.prepare?.(settings))?.configKey ?? null }
  } catch (error) {
    return { error: redact(explain(error)) }
  }
}

/** The session holding the hooks lock right now, if any (a dead runner's session holds nothing). */
export type LiveRunner = LockHolder

export const liveRunner = (client: pg.ClientBase): Promise<LiveRunner | null> => advisoryLockHolder(client, HOOKS_LOCK_KEY)

/** "42% of ~1,000,000, ETA 3m" for the running step, from the ledger alone. */
export function progressOf(entry: LedgerRow, now = Date.now()): string | null {
  if (entry.stepTotal === null || entry.stepDone === null || entry.stepTotal <= 0) return null
  const pct = Math.min(100, Math.floor((entry.stepDone / entry.stepTotal) * 100))
  let text = `${pct}% of ~${entry.stepTotal.toLocaleString('en-US')}`
  const doneHere = entry.stepDone - (entry.stepDoneAtStart ?? 0)
  const since = entry.runnerStartedAt ? now - entry.runnerStartedAt.getTime() : 0
  if (doneHere > 0 && since > 0 && entry.stepDone < entry.stepTotal) {
    text += `, ETA ${formatDuration(((entry.stepTotal - entry.stepDone) / doneHere) * since)}`
  }
  return text
}

function runnerOf(entry: LedgerRow, live: LiveRunner | null): string {
  const who = entry.runnerHost ? `${entry.runnerHost} pid ${entry.runnerPid}` : 'unknown runner'
  const beat = entry.heartbeatAt ? `, last batch ${entry.heartbeatAt.toISOString()}` : ''
  return live ? `run by ${who}${beat}` : `INTERRUPTED: ${who} is gone${beat}; the next db:backfill (or db:migrate) resumes it`
}

function describe(entry: LedgerRow, live: LiveRunner | null = null): string {
  const parts = [`v${entry.version}`, `${entry.rowsChanged} changed`, `${entry.rowsSkipped} skipped`]
  if (entry.state === 'running') {
    const progress = progressOf(entry)
    if (progress) parts.unshift(progress)
    parts.push(runnerOf(entry, live))
    // Only a live runner waits; a dead one's leftover mark means nothing.
    if (live && entry.throttled) {
      const since = entry.throttledSince ? ` since ${clockTime(entry.throttledSince.getTime())}` : ''
      parts.push(`throttled: ${entry.throttled}${since}`)
    }
  }
  if (entry.state === 'done' && entry.finishedAt) parts.push(`finished ${entry.finishedAt.toISOString()}`)
  if (entry.state !== 'done' && entry.step) parts.push(`at step ${entry.step}`)
  if (entry.note) parts.push(entry.note)
  return `${entry.state} (${parts.join(', ')})${entry.lastError ? ` — last error: ${entry.lastError}` : ''}`
}

/** The status of `opts.backfills` (hooks/run.ts passes the registered ones by default). */
export async function backfillStatus(
  databaseUrl: string,
  opts: { backfills: readonly Backfill[]; env?: NodeJS.ProcessEnv },
): Promise<HookStatus> {
  const backfills = opts.backfills
  const settings = loadSettings(opts.env ?? process.env)
  const client = await connect(databaseUrl, 'migration hooks status')
  try {
    const hasTable = await relationExists(client, 'public.api_requests')
    const ledger = (await ledgerExists(client)) ? await readLedger(client) : new Map<string, LedgerRow>()
    if (!hasTable && ledger.size === 0) {
      return { clean: true, lines: ['Backfills: nothing to do (api_requests does not exist yet).'] }
    }
    let clean = true
    const live = await liveRunner(client)
    const lines = [live ? `Backfills (a runner is working: session pid ${live.pid}, ${live.applicationName}):` : 'Backfills:']
    const width = Math.max(...backfills.map((b) => b.name.length))
    for (const backfill of backfills) {
      const entry = ledger.get(backfill.name)
      const config = await currentConfigKey(backfill, settings)
      let text: string
      let ok = false
      if (!entry) text = 'pending (never run)'
      else if (entry.version !== backfill.version)
        text = `pending (recorded v${entry.version}, code is v${backfill.version}: will re-run) — was ${describe(entry)}`
      else if ('error' in config) text = `input invalid: ${config.error}`
      else if (entry.state === 'done' && entry.configKey !== config.key)
        text = `pending (input changed since it ran: will re-run) — was ${describe(entry)}`
      else {
        text = describe(entry, live)
        ok = entry.state === 'done'
      }
      if (!ok) clean = false
      lines.push(`  ${backfill.name.padEnd(width)}  ${text}`)
    }
    lines.push(...(await describePass(client)))
    return { clean, lines }
  } finally {
    await client.end().catch(() => {})
  }
}
