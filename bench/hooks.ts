/**
 * Running our backfills the way a deploy does — through the real hook runner — in a child
 * process (bench/hook-child.ts), so that its peak RSS is its own and its timings are not
 * disturbed by the benchmark's bookkeeping.
 */
import { BACKFILLS } from '../hooks/backfills/index.js'
import type { BackfillSummary } from '../hooks/run.js'
import { cleanEnv, startTsx } from './processes.js'

export interface TxnStats {
  count: number
  maxMs: number
  p50Ms: number
  p99Ms: number
}

export interface HookRun {
  ok: boolean
  /** Stopped by --stop-after-ms before the backfills finished (summaries then empty). */
  partial?: boolean
  error?: string
  /** Whole runHooks() call, ANALYZE and hourly_stats refresh included. */
  wallMs: number
  summaries: BackfillSummary[]
  /** Batch transactions per backfill. */
  txns: Record<string, TxnStats>
  peakRssMb: number
  /** The statements that took the most time in total (first 80 characters of each). */
  topStatements: Array<{ sql: string; ms: number; calls: number }>
}

/**
 * HOOKS_* settings for the hook runner, from `--hook-env NAME=VALUE` (what-if runs). Empty by
 * default: the benchmark measures the defaults.
 */
export const hookEnv: NodeJS.ProcessEnv = {}

export interface HookChild {
  done: Promise<HookRun>
}

/**
 * Start the hook runner on `url` for the `only` backfills (all when omitted). The HOOKS_*
 * variables of the benchmark's own environment are not passed on: defaults apply.
 */
export function startHooks(url: string, only?: string[], extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): HookChild {
  const args = [...(only ? ['--only', only.join(',')] : []), ...extraArgs]
  const child = startTsx('bench/hook-child.ts', args, cleanEnv({ ...hookEnv, ...env, BENCH_DB_URL: url }))
  const done = child.then((r) => {
    const lines = String(r.stdout ?? '')
      .trim()
      .split('\n')
    let parsed: HookRun | undefined
    try {
      parsed = JSON.parse(lines.at(-1) ?? '') as HookRun
    } catch {
      /* reported below */
    }
    if (!parsed || r.exitCode !== 0) {
      throw new Error(`hook runner failed (exit ${r.exitCode}):\n${String(r.all ?? '').slice(-4000)}`)
    }
    return parsed
  })
  return { done }
}

export const runHooksChild = (url: string, only?: string[], env: NodeJS.ProcessEnv = {}) => startHooks(url, only, [], env).done

/** The per-row backfills: they run together in the row pass, so their durations are one. */
const ROW_PASS = new Set(BACKFILLS.filter((b) => b.row).map((b) => b.name))

/** The named backfills' own time (without ANALYZE / refresh): the row pass counted once. */
export function backfillMs(run: HookRun, names: string[]): number {
  const picked = run.summaries.filter((s) => names.includes(s.name))
  const pass = Math.max(0, ...picked.filter((s) => ROW_PASS.has(s.name)).map((s) => s.durationMs))
  return pass + picked.filter((s) => !ROW_PASS.has(s.name)).reduce((sum, s) => sum + s.durationMs, 0)
}

/**
 * Whether a transaction label (bench/hook-child.ts) belongs to the named backfills: their steps
 * (`subtask-links scan-calls`), the row pass when one of them takes part in it, and any other
 * transaction of the run (`?`), which is counted against every measurement.
 */
export const labelOf = (names: string[]) => (label: string) =>
  label === '?' ||
  (label === 'row-pass' && names.some((n) => ROW_PASS.has(n))) ||
  names.some((n) => label === n || label.startsWith(`${n} `))

/** Longest batch transaction among the named backfills. */
export function maxTxnMs(run: HookRun, names: string[]): number {
  const mine = labelOf(names)
  return Math.max(
    0,
    ...Object.entries(run.txns)
      .filter(([label]) => mine(label))
      .map(([, t]) => t.maxMs),
  )
}
