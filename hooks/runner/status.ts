/**
 * `db:status`'s view of the backfills: one line each, and whether everything is done.
 * Read-only, and usable before the first hook run (no ledger yet).
 */
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'
import type { Backfill, HookSettings } from './backfill.js'
import { connect, tableExists } from './sessions.js'
import { LEDGER_TABLE, readLedger, type LedgerRow } from './ledger.js'
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

function describe(entry: LedgerRow): string {
  const parts = [`v${entry.version}`, `${entry.rowsChanged} changed`, `${entry.rowsSkipped} skipped`]
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
    const hasTable = await tableExists(client, 'public.api_requests')
    const ledger = (await tableExists(client, LEDGER_TABLE)) ? await readLedger(client) : new Map<string, LedgerRow>()
    if (!hasTable && ledger.size === 0) {
      return { clean: true, lines: ['Backfills: nothing to do (api_requests does not exist yet).'] }
    }
    let clean = true
    const lines = ['Backfills:']
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
        text = describe(entry)
        ok = entry.state === 'done'
      }
      if (!ok) clean = false
      lines.push(`  ${backfill.name.padEnd(width)}  ${text}`)
    }
    return { clean, lines }
  } finally {
    await client.end().catch(() => {})
  }
}
