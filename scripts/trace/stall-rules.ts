/**
 * What in a trace would stall the proxy on a hot table with production's rows, and what to
 * do instead. A rule, not a list of files: a brief catalog-only lock (the chain's
 * `add_missing_columns`, a constraint added NOT VALID, a renamed column) takes ACCESS
 * EXCLUSIVE for milliseconds and passes; what makes that lock last — rows read or written
 * under it, a rewrite, an index build — does not.
 *
 * The scratch database holds a few hundred rows per hot table, so "more than FEW_ROWS" tells
 * work that grows with the table from a lookup of a row or two.
 */
import { hotTableNamed } from '../../lib/hot-tables.js'
import { blocksProxy, blocksProxyWork, lockName, type ProxyImpact } from './lock-modes.js'
import type { Trace, TableTrace } from './trace.js'
import type { Check, Waiver } from './waivers.js'

/**
 * Rows a migration may read under a strong lock, or update or delete, on a hot table: a
 * lookup or a fix of a row or two is brief; more grows with the table.
 */
export const FEW_ROWS = 10

export interface Stall {
  table: string
  check: Check
  lock: string
  blocks: ProxyImpact
  what: string
  fix: string
}

export interface Verdict {
  stalls: Stall[]
  waived: (Stall & { reason: string })[]
}

const FIX: Record<Check, string> = {
  rewrite:
    'never change a hot table in a way that rewrites it (column type, a volatile default, SET TABLESPACE, CLUSTER): add a new column, fill it with a backfill (hooks/backfills), and switch the application over',
  'index-build':
    "build it with migration_hooks.ensure_index('<name>', 'public.<table>', '<spec>'): on a table with rows it is queued for the online schema step, which builds it CONCURRENTLY",
  'scan-under-lock':
    'add the constraint NOT VALID (migration_hooks.ensure_check(), or `… not valid`): the online schema step validates it without blocking writes; move data changes to a backfill',
  'row-updates':
    'updating or deleting rows of a hot table is a backfill\'s job (hooks/backfills, README "Writing a backfill"): batches, resumable, throttled',
}

function stallsOf(t: TableTrace): Omit<Stall, 'table' | 'lock' | 'blocks'>[] {
  const found: Omit<Stall, 'table' | 'lock' | 'blocks'>[] = []
  const touched = t.rowsUpdated + t.rowsDeleted
  if (t.rewritten) found.push({ check: 'rewrite', what: `rewritten (new relfilenode), ${t.rowsRead} rows read`, fix: FIX.rewrite })
  // A rewrite rebuilds every index of the table: that is the rewrite's finding, not another.
  if (t.indexesBuilt.length > 0 && !t.rewritten)
    found.push({ check: 'index-build', what: `index built in place: ${t.indexesBuilt.join(', ')}`, fix: FIX['index-build'] })
  // A rewrite and an index build read the table under their lock: one finding each is enough.
  if (!t.rewritten && t.indexesBuilt.length === 0 && blocksProxyWork(t.lock) && t.rowsRead > FEW_ROWS)
    found.push({
      check: 'scan-under-lock',
      what: `${t.rowsRead} rows read, ${touched} updated or deleted, holding the lock`,
      fix: FIX['scan-under-lock'],
    })
  if (touched > FEW_ROWS)
    found.push({ check: 'row-updates', what: `${t.rowsUpdated} rows updated, ${t.rowsDeleted} deleted`, fix: FIX['row-updates'] })
  return found
}

/** The stalls in `trace` on hot tables that existed before it, with `waivers` applied. */
export function judge(trace: Trace, waivers: Waiver[] = []): Verdict {
  const verdict: Verdict = { stalls: [], waived: [] }
  for (const t of trace.tables) {
    if (!t.hot || t.created) continue
    for (const s of stallsOf(t)) {
      const stall: Stall = {
        table: t.table,
        lock: t.lock ? lockName(t.lock) + (t.lockVia ? ` (on ${t.lockVia})` : '') : 'none',
        blocks: t.lock ? blocksProxy(t.lock) : 'neither',
        ...s,
      }
      const waiver = waivers.find((w) => w.table === hotTableNamed(t.table) && w.check === s.check)
      if (waiver) verdict.waived.push({ ...stall, reason: waiver.reason })
      else verdict.stalls.push(stall)
    }
  }
  return verdict
}
