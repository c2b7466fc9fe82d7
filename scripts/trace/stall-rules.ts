/**
 * What in a trace would stall the proxy on a hot table with production's rows, and what to
 * do instead. A rule, not a list of files: a brief catalog-only lock (the chain's
 * `add_missing_columns`, a constraint added NOT VALID, a renamed column) takes ACCESS
 * EXCLUSIVE for milliseconds and passes; what makes that lock last — rows read or written
 * under it, a rewrite, an index build — does not. Thresholds: sample.ts.
 */
import { hotTableNamed } from '../../lib/hot-tables.js'
import { blocksProxy, blocksProxyWork, lockName, type ProxyImpact } from './lock-modes.js'
import { FEW_ROWS, GROWING_READS } from './sample.js'
import type { TableTrace, Trace } from './trace.js'
import type { Check, Waiver } from './waivers.js'

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
  /** Waivers in the file that waived nothing: stale, or a table or check the trace did not see. */
  unused: Waiver[]
}

const FIX: Record<Check, string> = {
  rewrite:
    'never change a hot table in a way that rewrites it (column type, a volatile default, SET TABLESPACE, CLUSTER): add a new column, fill it with a backfill (hooks/backfills), and switch the application over',
  'index-build':
    "build it with migration_hooks.ensure_index('<name>', 'public.<table>', '<spec>'): on a table with rows it is queued for the online schema step, which builds it CONCURRENTLY",
  'scan-under-lock':
    'add a constraint NOT VALID (migration_hooks.ensure_check(), or `… not valid`) and list it in CHAIN_CONSTRAINTS (scripts/deploy/online-schema.ts): the online schema step validates it without blocking writes; move data changes to a backfill',
  scan: 'a migration must not read a hot table through: on production that takes hours, and a WHERE the sample does not match may change millions of rows there; move the work to a backfill (hooks/backfills)',
  drop: 'never drop a hot table in a migration: the proxy writes it; retire it in a release of its own, after the application stopped using it',
  'row-updates':
    'updating or deleting rows of a hot table is a backfill\'s job (hooks/backfills, README "Writing a backfill"): batches, resumable, throttled',
}

function stallsOf(t: TableTrace): Omit<Stall, 'table' | 'lock' | 'blocks'>[] {
  const found: Omit<Stall, 'table' | 'lock' | 'blocks'>[] = []
  const touched = t.rowsUpdated + t.rowsDeleted
  if (t.dropped) return [{ check: 'drop', what: 'dropped', fix: FIX.drop }]
  if (t.rewritten) found.push({ check: 'rewrite', what: `rewritten (new relfilenode), ${t.rowsRead} rows read`, fix: FIX.rewrite })
  // A rewrite rebuilds every index of the table: that is the rewrite's finding, not another.
  if (t.indexesBuilt.length > 0 && !t.rewritten)
    found.push({ check: 'index-build', what: `index built in place: ${t.indexesBuilt.join(', ')}`, fix: FIX['index-build'] })
  // A rewrite and an index build read the table under their lock: one finding each is enough.
  // Reads that grow with the table: under a lock that blocks the proxy, it waits all along;
  // under a weaker one the migration still runs for hours, and its WHERE is untested at scale.
  if (!t.rewritten && t.indexesBuilt.length === 0 && t.rowsRead >= GROWING_READS) {
    const underLock = blocksProxyWork(t.lock)
    found.push({
      check: underLock ? 'scan-under-lock' : 'scan',
      what: `${t.rowsRead} of the sample's rows read${underLock ? ', holding the lock' : ''}, ${touched} updated or deleted`,
      fix: FIX[underLock ? 'scan-under-lock' : 'scan'],
    })
  }
  if (touched > FEW_ROWS)
    found.push({ check: 'row-updates', what: `${t.rowsUpdated} rows updated, ${t.rowsDeleted} deleted`, fix: FIX['row-updates'] })
  return found
}

/** The stalls in `trace` on hot tables that existed before it, with `waivers` applied. */
export function judge(trace: Trace, waivers: Waiver[] = []): Verdict {
  const verdict: Verdict = { stalls: [], waived: [], unused: [] }
  const used = new Set<Waiver>()
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
      if (waiver) used.add(waiver)
      if (waiver) verdict.waived.push({ ...stall, reason: waiver.reason })
      else verdict.stalls.push(stall)
    }
  }
  verdict.unused = waivers.filter((w) => !used.has(w))
  return verdict
}
