/**
 * The hook runner, as a child process of the benchmark, instrumented:
 *
 *   tsx bench/hook-child.ts [--only name,name] [--system-hash-first] [--stop-after-ms N]
 *                                               (target: BENCH_DB_URL)
 *
 * It calls the real `runHooks()` (hooks/run.ts) with the default settings, and prints, as
 * its last stdout line, one JSON object: the run's summaries, the duration of every batch
 * transaction (BEGIN … COMMIT/ROLLBACK) per backfill, and the process's peak RSS.
 *
 * Batch timings: the hooks expose no per-batch callback, so pg.Client.prototype.query is
 * wrapped (in this process only) to note when the runner sends BEGIN and when COMMIT or
 * ROLLBACK completes, per session (the row pass may run several workers). The ledger update the
 * runner writes in every batch (`update migration_hooks.backfills … where name = $1`) tells
 * which backfill and step a transaction belongs to (`subtask-links scan-calls`); a batch of
 * the row pass (it moves a chunk's position, or records a catch-up) is labelled `row-pass`,
 * whichever backfills took part; `?` is any other transaction (the pass's setup, say). This is client-side wall time: it includes the JavaScript work done while the
 * transaction is open, which is what other sessions actually wait for.
 *
 * --system-hash-first runs the backfills in a different order (runHooks' `backfills` option),
 * so that a time-limited window sees the system_hash backfill. --stop-after-ms ends the run
 * after that long: the JSON is printed with `partial: true` and the process exits, which rolls
 * back the batch in flight (the hooks resume from their ledger; the benchmark drops the copy).
 */
import pg from 'pg'
import { BACKFILLS } from '../hooks/backfills/index.js'
import { runHooks } from '../hooks/run.js'
import { ROW_PASS_PHASES } from '../hooks/runner/backfill.js'

interface Txn {
  backfill: string
  ms: number
}

const txns: Txn[] = []
/** The open transaction of each session. */
const openBy = new WeakMap<pg.Client, { started: number; backfill: string }>()
/** The step each backfill's next batch runs (the one its last batch recorded). */
const stepOf = new Map<string, string>()
/** Total time per statement (its first 80 characters), to show where the time goes. */
const statements = new Map<string, { ms: number; calls: number }>()

const original = pg.Client.prototype.query as (...args: unknown[]) => unknown
pg.Client.prototype.query = function patchedQuery(this: pg.Client, ...args: unknown[]) {
  const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string } | undefined)?.text ?? '')
  const statement = text.trim().toLowerCase()
  if (statement === 'begin') openBy.set(this, { started: performance.now(), backfill: '?' })
  const open = openBy.get(this)
  if (
    open &&
    open.backfill !== 'row-pass' &&
    statement.startsWith('update migration_hooks.backfills set step =') &&
    Array.isArray(args[1])
  ) {
    // A backfill's steps are told apart: a batch runs the step that the backfill's previous
    // batch recorded (a batch that ends a step records the next one), or its first step. The
    // row pass's batches outside the walk (its catch-up) are labelled as the pass's.
    const [name, step] = [String(args[1][0]), String(args[1][1])]
    const running = stepOf.get(name) ?? (ROW_PASS_PHASES.includes(step) ? step : BACKFILLS.find((b) => b.name === name)?.steps[0]?.name)
    open.backfill = running && ROW_PASS_PHASES.includes(running) ? 'row-pass' : `${name} ${running}`
    stepOf.set(name, step)
  }
  if (open && statement.startsWith('update migration_hooks.row_pass_chunks set next_page')) open.backfill = 'row-pass'
  const result = original.apply(this, args)
  if (result instanceof Promise) {
    const started = performance.now()
    const key = text.replace(/\s+/g, ' ').trim().slice(0, 80)
    result.then(
      () => {
        const entry = statements.get(key) ?? { ms: 0, calls: 0 }
        entry.ms += performance.now() - started
        entry.calls++
        statements.set(key, entry)
      },
      () => {},
    )
  }
  if ((statement === 'commit' || statement === 'rollback') && open && result instanceof Promise) {
    const txn = open
    openBy.delete(this)
    return result.then((value) => {
      const ms = performance.now() - txn.started
      txns.push({ backfill: txn.backfill, ms })
      // TXN_TRACE=1: every batch transaction on stderr, to see where the long ones fall.
      if (process.env.TXN_TRACE) process.stderr.write(`txn ${txn.backfill} ${ms.toFixed(0)} ms, ended ${new Date().toISOString()}\n`)
      return value
    })
  }
  return result
} as typeof pg.Client.prototype.query

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0)
  return { count: sorted.length, maxMs: sorted.at(-1) ?? 0, p50Ms: at(0.5), p99Ms: at(0.99) }
}

function report(started: number, result: { ok: boolean; error?: string; summaries: unknown[] }, partial: boolean): void {
  const byBackfill: Record<string, ReturnType<typeof stats>> = {}
  for (const name of new Set(txns.map((t) => t.backfill)))
    byBackfill[name] = stats(txns.filter((t) => t.backfill === name).map((t) => t.ms))
  process.stdout.write(
    JSON.stringify({
      ok: result.ok,
      error: result.error,
      partial,
      wallMs: performance.now() - started,
      summaries: result.summaries,
      txns: byBackfill,
      topStatements: [...statements.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, 8)
        .map(([sql, e]) => ({ sql, ms: Math.round(e.ms), calls: e.calls })),
      // maxRSS is in kilobytes: the peak resident set of this process (VmHWM).
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  )
}

const flag = (name: string) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}

async function main() {
  const url = process.env.BENCH_DB_URL
  if (!url) throw new Error('BENCH_DB_URL is not set')
  const only = flag('--only')?.split(',')
  const stopAfter = Number(flag('--stop-after-ms') ?? 0)
  const backfills = process.argv.includes('--system-hash-first')
    ? [...BACKFILLS.filter((b) => b.name === 'system-hash'), ...BACKFILLS.filter((b) => b.name !== 'system-hash')]
    : undefined
  const started = performance.now()
  if (stopAfter > 0) {
    setTimeout(() => {
      report(started, { ok: true, summaries: [] }, true)
      process.exit(0)
    }, stopAfter)
  }
  // Progress and summaries go to stderr; stdout carries only the JSON result.
  const result = await runHooks({
    databaseUrl: url,
    shadow: false,
    only,
    backfills,
    tty: false,
    log: (line) => process.stderr.write(line + '\n'),
  })
  report(started, result, false)
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(String(error?.stack ?? error) + '\n')
    process.exit(1)
  },
)
