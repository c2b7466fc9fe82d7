/**
 * system_hash backfill throughput, three ways, each on its own fresh copy of the data:
 *
 *  ours    the real `system-hash` backfill through the hook runner (bench/hook-child.ts), at
 *          the default batch settings; rows/s = N / the backfill's own duration. Also its longest
 *          batch transaction and the runner process's peak RSS.
 *  legacy  the legacy script's strategy: newest 1,000 rows with their WHOLE bodies, hash in
 *          JavaScript, one UPDATE per row. Corrected only so that it makes progress: it adds
 *          `and system_hash is null` (the original never gets past the newest 1,000 rows) and
 *          leaves out rows it already found to hash to NULL (they would otherwise come back
 *          in every batch). Time-boxed: it stops after LEGACY_MAX_ROWS rows or LEGACY_MAX_MS,
 *          whichever comes first, and rows/s is extrapolated from that.
 *  floor   what reading alone costs: `body->'system'` for every row in key order (keyset
 *          pagination, 1,000 rows a query) and the hash in JavaScript, writing nothing.
 */
import type pg from 'pg'
import { computeSystemHash } from '../hooks/rules/system-prompt-hash.js'
import { backfillMs, maxTxnMs, runHooksChild, type HookRun } from './hooks.js'
import { openClient } from '../lib/connection.js'

export const LEGACY_MAX_ROWS = 20_000
export const LEGACY_MAX_MS = 60_000

export interface OursResult {
  rowsPerS: number
  ms: number
  changed: number
  skipped: number
  maxTxnMs: number
  p99TxnMs: number
  batches: number
  peakRssMb: number
  topStatements: HookRun['topStatements']
}

export interface LegacyResult {
  rowsPerS: number
  /** Rows actually processed before the time box closed. */
  rows: number
  ms: number
  stoppedBy: 'rows' | 'time' | 'done'
}

export interface FloorResult {
  rowsPerS: number
  rows: number
  ms: number
}

export async function measureOurs(url: string, rows: number): Promise<OursResult> {
  const run = await runHooksChild(url, ['system-hash'])
  if (!run.ok) throw new Error(`system-hash backfill failed: ${run.error}`)
  const summary = run.summaries.find((s) => s.name === 'system-hash')!
  const ms = backfillMs(run, ['system-hash'])
  return {
    rowsPerS: (rows * 1000) / ms,
    ms,
    changed: summary.changed,
    skipped: summary.skipped,
    maxTxnMs: maxTxnMs(run, ['system-hash']),
    p99TxnMs: run.txns['row-pass']?.p99Ms ?? 0,
    batches: run.txns['row-pass']?.count ?? 0,
    peakRssMb: run.peakRssMb,
    topStatements: run.topStatements,
  }
}

export async function measureLegacy(url: string): Promise<LegacyResult> {
  const client = await openClient(url, { applicationName: 'bench legacy system-hash' })
  try {
    const started = performance.now()
    const nullHashes: string[] = []
    let processed = 0
    let stoppedBy: LegacyResult['stoppedBy'] = 'done'
    outer: for (;;) {
      const { rows } = await client.query<{ request_id: string; body: { system?: unknown } }>(
        `select request_id, body from api_requests
         where body ? 'system' and system_hash is null and not (request_id = any($1::uuid[]))
         order by timestamp desc limit 1000`,
        [nullHashes],
      )
      if (!rows.length) break
      for (const row of rows) {
        const hash = computeSystemHash(row.body.system)
        if (hash === null) nullHashes.push(row.request_id)
        else await client.query('update api_requests set system_hash = $1 where request_id = $2', [hash, row.request_id])
        processed++
        if (processed >= LEGACY_MAX_ROWS) {
          stoppedBy = 'rows'
          break outer
        }
        if (performance.now() - started >= LEGACY_MAX_MS) {
          stoppedBy = 'time'
          break outer
        }
      }
    }
    const ms = performance.now() - started
    return { rowsPerS: (processed * 1000) / ms, rows: processed, ms, stoppedBy }
  } finally {
    await client.end().catch(() => {})
  }
}

export async function measureFloor(url: string): Promise<FloorResult> {
  const client = await openClient(url, { applicationName: 'bench floor' })
  try {
    const started = performance.now()
    let after: string | null = null
    let count = 0
    let hashed = 0
    for (;;) {
      const result: pg.QueryResult<{ id: string; system: unknown }> = await client.query(
        after === null
          ? `select request_id::text as id, body->'system' as system from api_requests order by request_id limit 1000`
          : `select request_id::text as id, body->'system' as system from api_requests where request_id > $1 order by request_id limit 1000`,
        after === null ? [] : [after],
      )
      for (const row of result.rows) if (row.system !== null && computeSystemHash(row.system) !== null) hashed++
      count += result.rows.length
      if (result.rows.length < 1000) break
      after = result.rows[result.rows.length - 1].id
    }
    const ms = performance.now() - started
    if (hashed === 0) throw new Error('floor: no system prompt found; is the data there?')
    return { rowsPerS: (count * 1000) / ms, rows: count, ms }
  } finally {
    await client.end().catch(() => {})
  }
}
