/**
 * The data backfills that run after all migrations (graphile-migrate's afterAllMigrations /
 * afterCurrent action, or the `npm run db:migrate` wrapper itself).
 *
 * One run: take the hooks lock, make sure the ledger exists, run every backfill in order
 * (each resuming from its ledger cursor; a done one is skipped unless its version or input
 * changed), stop at the first failure, then refresh hourly_stats and ANALYZE what changed.
 *
 * As a script:
 *   tsx hooks/run.ts [--dry-run] [--only name,name] [--status]
 * Target: GM_DBURL (set by graphile-migrate), else DATABASE_URL. GM_SHADOW=1 marks the shadow
 * database. MIGRATION_HOOKS_DEFERRED=1 makes the script do nothing: the db:migrate wrapper
 * runs the hooks itself, in the foreground, right after migrating.
 */
import { isMainModule } from '../lib/entry-point.js'
import { explain, reportFatal, UserError } from '../lib/errors.js'
import { redact } from '../lib/redact.js'
import { BACKFILLS } from './backfills/index.js'
import type { Backfill } from './runner/backfill.js'
import { runBackfill, type BackfillSummary } from './runner/batch-runner.js'
import { connect, connectReader, tableExists } from './runner/sessions.js'
import { ensureLedger, LEDGER_TABLE } from './runner/ledger.js'
import { acquireHooksLock, releaseHooksLock } from './runner/hooks-lock.js'
import { analyzeTables, hourlyStatsRefreshMode, refreshHourlyStats, tablesToAnalyze, type RefreshMode } from './runner/maintenance.js'
import { formatDuration } from './runner/progress.js'
import { loadSettings } from './runner/settings.js'
import { backfillStatus, type HookStatus } from './runner/status.js'

export type { HookStatus }

/** `db:status`'s view of the backfills (default: every registered one). */
export function hookStatus(
  databaseUrl: string,
  opts: { backfills?: readonly Backfill[]; env?: NodeJS.ProcessEnv } = {},
): Promise<HookStatus> {
  return backfillStatus(databaseUrl, { ...opts, backfills: opts.backfills ?? BACKFILLS })
}
export type { BackfillSummary }

export interface RunHooksOptions {
  databaseUrl: string
  /** The shadow database (GM_SHADOW=1): same work; its tables are empty, so it is quick. */
  shadow: boolean
  /** Report what would change; everything runs in one transaction that is rolled back. */
  dryRun?: boolean
  /** Run only these backfills (by name); the others are left as they are. */
  only?: string[]
  /** Where progress and summaries go (default: stdout). Errors go to stderr. */
  log?: (line: string) => void
  /** Live progress bars (default: when stderr is a terminal and not on the shadow database). */
  tty?: boolean
  /** Backfills to run, in order (default: all of hooks/backfills/index.ts). For tests. */
  backfills?: readonly Backfill[]
  /** Where the HOOKS_* settings and ACCOUNT_MAPPING_FILE are read from (default: process.env). */
  env?: NodeJS.ProcessEnv
}

export interface RunHooksResult {
  ok: boolean
  summaries: BackfillSummary[]
  /** How hourly_stats was (or, in a dry run, would be) refreshed. */
  refresh?: RefreshMode
  /** Tables ANALYZEd (or that would be). */
  analyzed: string[]
  /** The failure, already printed. */
  error?: string
}

function select(backfills: readonly Backfill[], only: string[] | undefined): Backfill[] {
  if (!only?.length) return [...backfills]
  const known = new Set(backfills.map((b) => b.name))
  const unknown = only.filter((name) => !known.has(name))
  if (unknown.length) {
    throw new UserError(`Unknown backfill ${unknown.map((n) => `"${n}"`).join(', ')} in --only. Known: ${[...known].join(', ')}.`)
  }
  return backfills.filter((b) => only.includes(b.name))
}

function summaryLine(s: BackfillSummary, width: number, dryRun: boolean): string {
  const counts = `${dryRun ? 'would change' : 'changed'} ${s.changed}, skipped ${s.skipped}, ${formatDuration(s.durationMs)}`
  const detail: Record<BackfillSummary['outcome'], string> = {
    done: `done: ${counts}`,
    'already-done': `already done${s.note ? ` (${s.note})` : ''}`,
    skipped: `skipped: ${s.note}`,
    failed: `FAILED after ${counts}`,
  }
  return `  ${s.name.padEnd(width)}  ${detail[s.outcome]}`
}

function failureParagraph(s: BackfillSummary, dryRun: boolean): string {
  const rerun = 'run the hooks again (npm run db:migrate, or tsx hooks/run.ts), which resumes where this run stopped'
  const kept = dryRun
    ? 'This was a dry run: nothing was written.'
    : s.failureRecorded
      ? `The failure is recorded in ${LEDGER_TABLE} and batches already committed are kept; fix the cause and ${rerun}.`
      : `The connection was lost, so ${LEDGER_TABLE} still shows this backfill as running; batches already committed are kept. When the server is reachable again, ${rerun}.`
  const reason = /[.!?]$/.test(s.error ?? '') ? s.error : `${s.error}.`
  return `Migration hooks: backfill "${s.name}" failed: ${reason} ${kept} Later backfills were not run.`
}

/**
 * Check every backfill's settings and external input (HOOKS_*, the mapping file) without
 * touching a database; throws the UserError a run would fail with. For callers that must
 * refuse before changing anything (db:migrate's preflight).
 */
export async function validateHookInputs(env: NodeJS.ProcessEnv = process.env, backfills: readonly Backfill[] = BACKFILLS): Promise<void> {
  const settings = loadSettings(env)
  for (const backfill of backfills) await backfill.prepare?.(settings)
}

export async function runHooks(opts: RunHooksOptions): Promise<RunHooksResult> {
  const log = opts.log ?? ((line: string) => console.log(line))
  const dryRun = opts.dryRun ?? false
  const result: RunHooksResult = { ok: true, summaries: [], analyzed: [] }
  let client: Awaited<ReturnType<typeof connect>> | undefined
  let reader: Awaited<ReturnType<typeof connect>> | undefined
  try {
    const settings = loadSettings(opts.env ?? process.env)
    const backfills = select(opts.backfills ?? BACKFILLS, opts.only)
    const tty = opts.tty ?? (Boolean(process.stderr.isTTY) && !opts.shadow)
    client = await connect(opts.databaseUrl, dryRun ? 'migration hooks (dry run)' : 'migration hooks')
    await acquireHooksLock(client, settings.lockWaitSeconds, log)
    if (!(await tableExists(client, 'public.api_requests'))) {
      log('Migration hooks: api_requests does not exist yet; nothing to backfill.')
      return result
    }
    if (dryRun) {
      log('Migration hooks: DRY RUN — everything below runs in a transaction that is rolled back.')
      await client.query('begin')
    }
    try {
      await ensureLedger(client)
      const changedTables = new Set<string>()
      // Planned steps read ahead on a second session while the first one writes (not in a
      // dry run, whose reads must see its own uncommitted writes).
      reader = dryRun ? undefined : await connectReader(opts.databaseUrl, settings)
      for (const backfill of backfills) {
        const summary = await runBackfill(client, backfill, { settings, dryRun, log, tty, reader })
        result.summaries.push(summary)
        if (summary.changed > 0) for (const t of backfill.tables) changedTables.add(t)
        if (summary.outcome === 'failed') {
          result.ok = false
          result.error = summary.error
          process.stderr.write(redact(failureParagraph(summary, dryRun)) + '\n')
          const stack = (summary.cause as Error | undefined)?.stack
          if (process.env.DEBUG && stack) process.stderr.write(redact(stack) + '\n')
          break
        }
      }
      if (result.ok) {
        result.analyzed = await tablesToAnalyze(client, changedTables)
        if (dryRun) {
          result.refresh = await hourlyStatsRefreshMode(client)
        } else {
          result.refresh = await refreshHourlyStats(client, settings)
          await analyzeTables(client, settings, result.analyzed)
        }
      }
    } finally {
      if (dryRun) await client.query('rollback').catch(() => {})
    }
    const width = Math.max(0, ...result.summaries.map((s) => s.name.length))
    log(`Migration hooks${dryRun ? ' (dry run, nothing written)' : ''}${opts.shadow ? ' [shadow]' : ''}:`)
    for (const s of result.summaries) log(summaryLine(s, width, dryRun))
    if (result.ok) {
      const verb = dryRun ? 'would be' : 'was'
      if (result.refresh && result.refresh !== 'missing') log(`  hourly_stats ${verb} refreshed (${result.refresh})`)
      if (result.analyzed.length) log(`  ANALYZE ${verb === 'was' ? 'ran on' : 'would run on'}: ${result.analyzed.join(', ')}`)
    }
    return result
  } catch (error) {
    result.ok = false
    result.error = redact(error instanceof UserError ? error.message : explain(error))
    reportFatal(error, 'Migration hooks failed')
    return result
  } finally {
    await reader?.end().catch(() => {})
    if (client) {
      await releaseHooksLock(client).catch(() => {})
      await client.end().catch(() => {})
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Script mode

const USAGE = 'Usage: tsx hooks/run.ts [--dry-run] [--only name,name] [--status]'

/** graphile-migrate sets DATABASE_URL to this placeholder for actions; never connect to it. */
const GM_PLACEHOLDER_URL = 'postgres://PLEASE:USE@GM_DBURL/INSTEAD'

interface Args {
  dryRun: boolean
  status: boolean
  only?: string[]
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { dryRun: false, status: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--dry-run') args.dryRun = true
    else if (arg === '--status') args.status = true
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length)
      if (!value) throw new UserError(`--only needs a comma-separated list of backfill names. ${USAGE}`)
      args.only = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    } else throw new UserError(`Unknown argument "${arg}". ${USAGE}`)
  }
  return args
}

async function main(argv: string[]): Promise<number> {
  if (process.env.MIGRATION_HOOKS_DEFERRED === '1') {
    console.log('hooks deferred to the db:migrate wrapper')
    return 0
  }
  const args = parseArgs(argv)
  const fallback = process.env.DATABASE_URL === GM_PLACEHOLDER_URL ? undefined : process.env.DATABASE_URL
  const databaseUrl = process.env.GM_DBURL || fallback
  if (!databaseUrl) throw new UserError('No database to run the hooks on: set GM_DBURL (graphile-migrate does) or DATABASE_URL.')
  if (args.status) {
    const status = await hookStatus(databaseUrl)
    for (const line of status.lines) console.log(line)
    return status.clean ? 0 : 4
  }
  const result = await runHooks({ databaseUrl, shadow: process.env.GM_SHADOW === '1', dryRun: args.dryRun, only: args.only })
  return result.ok ? 0 : 1
}

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => process.exit(reportFatal(error, 'Migration hooks failed')),
  )
}
