/**
 * How a trace reads: a line per table for `db:trace` and `db:commit`, one line for `db:watch`.
 */
import { blocksProxy, lockName, type ProxyImpact } from './lock-modes.js'
import type { Verdict } from './stall-rules.js'
import type { TableTrace, Trace } from './trace.js'

/** "blocks the proxy's writes", in words. */
export const impactText = (blocks: ProxyImpact): string =>
  blocks === 'neither' ? "blocks neither the proxy's reads nor its writes" : `blocks the proxy's ${blocks}`

function lockText(t: TableTrace): string {
  if (!t.lock) return 'no lock'
  const via = t.lockVia ? ` on ${t.lockVia}` : ''
  return `${lockName(t.lock)}${via} (${impactText(blocksProxy(t.lock))})`
}

function workText(t: TableTrace): string {
  const parts: string[] = []
  if (t.created) parts.push('created here')
  if (t.dropped) parts.push('DROPPED')
  if (t.renamedFrom) parts.push(`renamed from ${t.renamedFrom}`)
  if (t.rewritten) parts.push(`REWRITTEN with its ${t.indexesBuilt.length} indexes`)
  else if (t.indexesBuilt.length) parts.push(`index built in place: ${t.indexesBuilt.join(', ')}`)
  if (t.seqScans || t.rowsRead) parts.push(`${t.seqScans} seq scan(s), ${t.rowsRead} rows read`)
  if (t.rowsInserted) parts.push(`${t.rowsInserted} inserted`)
  if (t.rowsUpdated) parts.push(`${t.rowsUpdated} updated`)
  if (t.rowsDeleted) parts.push(`${t.rowsDeleted} deleted`)
  return parts.length ? parts.join(', ') : 'catalog only'
}

export function traceReport(label: string, trace: Trace, verdict: Verdict, rowsPerTable: number): string[] {
  const lines = [
    `Trace of ${label} (in a transaction on the shadow database: committed chain + ${rowsPerTable} rows per hot table; rolled back):`,
  ]
  if (trace.error) return [...lines, `  the SQL failed: ${trace.error}`]
  if (trace.concurrent)
    return [
      `Trace of ${label} (--! no-transaction: checked by its text, not run):`,
      `  ${trace.concurrent} — SHARE UPDATE EXCLUSIVE on its table (blocks neither the proxy's reads nor its writes); waits for older transactions.`,
    ]
  if (!trace.tables.length && !trace.queued.length) return [...lines, '  touches no table.']
  for (const t of trace.tables) lines.push(`  ${t.table}${t.hot ? ' [hot]' : ''}: ${lockText(t)}; ${workText(t)}`)
  for (const q of trace.queued) lines.push(`  queued for the online schema step: ${q.statement}`)
  for (const c of trace.notValid) lines.push(`  added NOT VALID (validated by the online schema step if listed in CHAIN_CONSTRAINTS): ${c}`)
  for (const w of verdict.waived) lines.push(`  waived: ${w.table} ${w.check} — ${w.reason}`)
  for (const w of verdict.unused)
    lines.push(`  waiver on line ${w.line} waives nothing here (${w.table} ${w.check}): remove it, or it will hide a later change`)
  for (const s of verdict.stalls) {
    lines.push(`  STALL ${s.table} ${s.check}: ${s.what}; lock ${s.lock} ${impactText(s.blocks)}.`)
    lines.push(`    fix: ${s.fix}.`)
  }
  if (verdict.stalls.length) {
    lines.push(`  (a deliberate case: "-- trace-waiver: <table> <check>: <reason>" in the file — see migrations/CONVENTIONS.md)`)
  }
  return lines
}

/** One line for `db:watch`: the hot tables' locks and work, and the verdict. */
export function traceSummary(trace: Trace, verdict: Verdict): string {
  if (trace.error) return `trace: the SQL failed on the scratch database: ${trace.error}`
  if (trace.concurrent) return 'trace: one CONCURRENTLY index statement outside a transaction (blocks neither reads nor writes) — ok'
  const hot = trace.tables.filter((t) => t.hot && !t.created)
  const short = (table: string) => table.replace(/^public\./, '')
  const parts = hot.map((t) => `${short(t.table)} ${t.lock ? lockName(t.lock) : 'no lock'} (${workText(t)})`)
  if (trace.queued.length) parts.push(`${trace.queued.length} queued for the online step`)
  const verdictText = verdict.stalls.length
    ? `WOULD STALL THE PROXY: ${verdict.stalls.map((s) => `${short(s.table)} ${s.check}`).join(', ')} (npm run db:trace for details)`
    : 'ok'
  return `trace: ${parts.length ? parts.join('; ') : 'no hot table touched'} — ${verdictText}`
}
