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
import { withClient } from '../lib/connection.js'
import { isMainModule } from '../lib/entry-point.js'
import { explain, reportFatal, UserError } from '../lib/errors.js'
import { redact } from '../lib/redact.js'
import { BACKFILLS } from './backfills/index.js'
import type pg from 'pg'
import { type Backfill, decidesBeforeRowPass, type HookSettings } from './runner/backfill.js'
import { runBackfill, type BackfillSummary } from './runner/batch-runner.js'
import { joinRowPass, rowBackfills, type RowPassOptions, runRowPass } from './runner/row-pass/run-pass.js'
import { setParameters } from './runner/parameters.js'
import { connect, connectHealth, connectReader } from './runner/sessions.js'
import { createThrottle, type HealthGate, NO_THROTTLE } from './runner/health/throttle.js'
import { relationExists } from '../lib/catalog-probe.js'
import { ensureLedger, LEDGER_TABLE, readEntry } from './runner/ledger.js'
import { dropRetiredTables } from './runner/retired-tables.js'
import { tryAdvisoryLock } from '../lib/advisory-lock.js'
import { acquireHooksLock, HOOKS_LOCK_KEY, releaseHooksLock } from './runner/hooks-lock.js'
import { analyzeTables, hourlyStatsRefreshMode, refreshHourlyStats, tablesToAnalyze, type RefreshMode } from './runner/maintenance.js'
import { formatDuration } from './runner/progress.js'
import { costLine, costMark, costSince, type RunCost } from './runner/server-cost.js'
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
  /** Report what would change; every batch is rolled back at once (no row lock outlives it). */
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
  /**
   * When another process holds the hooks lock: 'wait' for it (up to HOOKS_LOCK_WAIT_SECONDS,
   * the default), or 'report' where that run stands and return at once with `busy` set —
   * what a deploy wants: the work is being done, by someone else — or 'join': help that run's
   * row pass with HOOKS_WORKERS sessions until its walk has no free chunk (what a second
   * `db:backfill` does), reporting as 'report' when there is nothing to join.
   */
  ifBusy?: 'wait' | 'report' | 'join'
  /** Asked after every committed batch; a reason (e.g. "SIGTERM") ends the run there, resumable. */
  shouldStop?: () => string | undefined
  /**
   * Whether migrations (or current.sql) just changed the database. When false and no backfill
   * changed a row, hourly_stats is not refreshed (unless never populated): a no-op deploy does
   * no heavy work. Default true — graphile-migrate runs the hooks only after a change.
   */
  schemaChanged?: boolean
}

export interface RunHooksResult {
  ok: boolean
  /** Another process is running the backfills (ifBusy: 'report' or 'join'). */
  busy?: boolean
  /** This process helped that process's row pass (ifBusy: 'join'). */
  joined?: boolean
  /** Stopped on request after a committed batch; the next run resumes. */
  stopped?: boolean
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

/**
 * `--only` must not run a backfill without those it `needs`, unless they are already done at
 * their current version: sub-task linking decides from the Task calls task-invocations
 * leaves, and parent-request-ids compares conversations as they were before linking moved
 * rows, which only the same pass knows.
 */
async function refuseMissingNeeds(client: pg.ClientBase, all: readonly Backfill[], chosen: readonly Backfill[]): Promise<void> {
  const names = new Set(chosen.map((b) => b.name))
  for (const backfill of chosen) {
    const missing: string[] = []
    for (const name of backfill.needs ?? []) {
      if (names.has(name)) continue
      const entry = await readEntry(client, name)
      const version = all.find((b) => b.name === name)?.version
      if (entry?.state !== 'done' || entry.version !== version) missing.push(name)
    }
    if (missing.length) {
      throw new UserError(
        `--only ${backfill.name} needs ${missing.join(', ')} in the same run (it reads what they write, and takes part in the same row pass), ` +
          `unless they are already done: add ${missing.join(', ')} to --only, or leave --only out. Nothing was run.`,
      )
    }
  }
}

function summaryLine(s: BackfillSummary, width: number, dryRun: boolean): string {
  const counts = `${dryRun ? 'would change' : 'changed'} ${s.changed}, skipped ${s.skipped}, ${formatDuration(s.durationMs)}`
  const detail: Record<BackfillSummary['outcome'], string> = {
    done: `done: ${counts}`,
    'already-done': `already done${s.note ? ` (${s.note})` : ''}`,
    skipped: `skipped: ${s.note}`,
    failed: `FAILED after ${counts}`,
    stopped: `stopped (${s.note}) after ${counts}; the next run resumes here`,
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
  let health: HealthGate = NO_THROTTLE
  try {
    const settings = loadSettings(opts.env ?? process.env)
    health = healthGate(opts, settings, dryRun, log)
    const backfills = select(opts.backfills ?? BACKFILLS, opts.only)
    const tty = opts.tty ?? (Boolean(process.stderr.isTTY) && !opts.shadow)
    client = await connect(opts.databaseUrl, dryRun ? 'migration hooks (dry run)' : 'migration hooks')
    // The hooks' own bound on every statement of this session (the ledger, estimates), not the
    // role's: batches set theirs per transaction, maintenance its own.
    await setParameters(client, { statement_timeout: `${settings.statementTimeoutMs}ms` }, 'session')
    if (opts.ifBusy === 'report' || opts.ifBusy === 'join') {
      if (!(await tryAdvisoryLock(client, HOOKS_LOCK_KEY))) {
        result.busy = true
        if (opts.ifBusy === 'join' && !dryRun && (await joinBusyRun(client, opts, settings, backfills, log, tty, result, health)))
          return result
        const status = await hookStatus(opts.databaseUrl, { backfills: opts.backfills, env: opts.env })
        log('Migration hooks: another process is running the backfills; not waiting for it. Where they stand:')
        for (const line of status.lines) log(line)
        return result
      }
    } else {
      await acquireHooksLock(client, settings.lockWaitSeconds, log)
    }
    if (!(await relationExists(client, 'public.api_requests'))) {
      log('Migration hooks: api_requests does not exist yet; nothing to backfill.')
      return result
    }
    if (dryRun) {
      log('Migration hooks: DRY RUN — every batch is rolled back as soon as it has run; nothing is written.')
      await client.query('begin')
    }
    // What the run costs the server (WAL, heap growth): printed with the summary.
    const costStart = await costMark(client)
    let cost: RunCost | undefined
    try {
      await ensureLedger(client)
      // Scratch tables a killed run retired but could not drop (runner/retired-tables.ts).
      if (!dryRun) await dropRetiredTables(client)
      if (opts.only?.length) await refuseMissingNeeds(client, opts.backfills ?? BACKFILLS, backfills)
      const changedTables = new Set<string>()
      // The row pass reads ahead on a second session while the first one writes (not in a dry
      // run, whose reads must see its own uncommitted writes); GIN merges run there too.
      reader = dryRun ? undefined : await connectReader(opts.databaseUrl, settings)
      // Records one backfill's outcome; false when the run must end there (failed, stopped).
      const record = (backfill: Backfill, summary: BackfillSummary): boolean => {
        result.summaries.push(summary)
        if (summary.changed > 0) for (const t of backfill.tables) changedTables.add(t)
        if (summary.outcome === 'stopped') result.stopped = true
        if (summary.outcome === 'failed') {
          result.ok = false
          result.error ??= summary.error
          process.stderr.write(redact(failureParagraph(summary, dryRun)) + '\n')
          const stack = (summary.cause as Error | undefined)?.stack
          if (process.env.DEBUG && stack) process.stderr.write(redact(stack) + '\n')
        }
        return summary.outcome !== 'stopped' && summary.outcome !== 'failed'
      }
      // The per-row backfills in one pass — those that decide across rows (sub-task linking)
      // run their read-only steps first — then the others, one by one.
      const perRow = rowBackfills(backfills)
      const decided = new Map<string, BackfillSummary>()
      let rowsOk = true
      for (const backfill of perRow.filter(decidesBeforeRowPass)) {
        const summary = await runBackfill(client, backfill, { settings, dryRun, log, tty, reader, shouldStop: opts.shouldStop, health })
        decided.set(backfill.name, summary)
        if (summary.outcome === 'failed' || summary.outcome === 'stopped') {
          rowsOk = record(backfill, summary)
          break
        }
      }
      if (rowsOk && perRow.length) {
        const rowSummaries = await runRowPass(client, perRow, rowPassOptions(opts, settings, { dryRun, log, tty, reader, health }))
        // Every per-row backfill ran (or failed) together: all are reported before deciding.
        rowsOk = perRow.map((b, i) => record(b, withSteps(rowSummaries[i], decided.get(b.name)))).every(Boolean)
      }
      if (rowsOk) {
        for (const backfill of backfills.filter((b) => !b.row)) {
          const summary = await runBackfill(client, backfill, { settings, dryRun, log, tty, reader, shouldStop: opts.shouldStop, health })
          if (!record(backfill, summary)) break
        }
      }
      if (result.ok && !result.stopped) {
        result.analyzed = await tablesToAnalyze(client, changedTables)
        const mode = await hourlyStatsRefreshMode(client)
        // A populated view is only refreshed when something it summarises may have changed.
        const refresh = mode === 'plain' || (mode === 'concurrently' && ((opts.schemaChanged ?? true) || changedTables.size > 0))
        if (dryRun) {
          result.refresh = refresh ? mode : 'skipped'
        } else {
          // The refresh writes the whole view in one statement: it too waits for a healthy database.
          if (refresh) await health.beforeBatch({ backfills: [] })
          result.refresh = refresh ? await refreshHourlyStats(client, settings) : 'skipped'
          await analyzeTables(client, settings, result.analyzed)
        }
      }
      if (!dryRun && result.summaries.some((s) => s.changed > 0)) cost = await costSince(client, costStart)
    } finally {
      if (dryRun) await client.query('rollback').catch(() => {})
    }
    const width = Math.max(0, ...result.summaries.map((s) => s.name.length))
    log(`Migration hooks${dryRun ? ' (dry run, nothing written)' : ''}${opts.shadow ? ' [shadow]' : ''}:`)
    for (const s of result.summaries) log(summaryLine(s, width, dryRun))
    if (result.ok) {
      const verb = dryRun ? 'would be' : 'was'
      if (result.refresh === 'skipped') log('  hourly_stats: not refreshed (nothing it summarises changed)')
      else if (result.refresh && result.refresh !== 'missing') log(`  hourly_stats ${verb} refreshed (${result.refresh})`)
      if (result.analyzed.length) log(`  ANALYZE ${verb === 'was' ? 'ran on' : 'would run on'}: ${result.analyzed.join(', ')}`)
    }
    const costText = cost && costLine(cost)
    if (costText) log(costText)
    return result
  } catch (error) {
    result.ok = false
    result.error = redact(error instanceof UserError ? error.message : explain(error))
    reportFatal(error, 'Migration hooks failed')
    return result
  } finally {
    await health.close()
    await reader?.end().catch(() => {})
    if (client) {
      await releaseHooksLock(client).catch(() => {})
      await client.end().catch(() => {})
    }
  }
}

/** A row backfill's summary with the time and phases of the steps it ran before the pass. */
function withSteps(summary: BackfillSummary, steps: BackfillSummary | undefined): BackfillSummary {
  if (!steps) return summary
  return {
    ...summary,
    changed: summary.changed + steps.changed,
    skipped: summary.skipped + steps.skipped,
    durationMs: summary.durationMs + steps.durationMs,
    phases: { ...steps.phases, ...summary.phases },
  }
}

/**
 * The throttle of this run (health/throttle.ts): every batch of every backfill and worker asks
 * it first. None in a dry run (its one open transaction cannot wait without holding it; it is
 * a forecast), on the shadow database (empty tables), or with HOOKS_THROTTLE=off.
 */
function healthGate(opts: RunHooksOptions, settings: HookSettings, dryRun: boolean, log: (line: string) => void): HealthGate {
  if (dryRun || opts.shadow || !settings.health.enabled) return NO_THROTTLE
  return createThrottle({
    limits: settings.health,
    openSession: () => connectHealth(opts.databaseUrl, settings),
    log,
    shouldStop: opts.shouldStop,
  })
}

/** The row pass's options, the same for running a pass and for joining another process's. */
function rowPassOptions(
  opts: RunHooksOptions,
  settings: HookSettings,
  session: Pick<RowPassOptions, 'dryRun' | 'log' | 'tty' | 'reader' | 'health'>,
): RowPassOptions {
  return {
    ...session,
    settings,
    shouldStop: opts.shouldStop,
    // Opens the two sessions of one more worker (HOOKS_WORKERS > 1).
    openWorkerSessions: async () => ({
      writer: await connect(opts.databaseUrl, 'migration hooks worker'),
      reader: await connectReader(opts.databaseUrl, settings),
    }),
    openMaintenanceSession: () => connect(opts.databaseUrl, 'migration hooks vacuum'),
  }
}

/**
 * Another process holds the hooks lock: help its row pass if it is walking (joinRowPass), and
 * say so. False when there is nothing this process can join.
 */
async function joinBusyRun(
  client: pg.ClientBase,
  opts: RunHooksOptions,
  settings: HookSettings,
  backfills: Backfill[],
  log: (line: string) => void,
  tty: boolean,
  result: RunHooksResult,
  health: HealthGate,
): Promise<boolean> {
  if (opts.only?.length || !(await relationExists(client, 'public.api_requests'))) return false
  let reader: pg.Client | undefined
  try {
    reader = await connectReader(opts.databaseUrl, settings)
    const joined = await joinRowPass(client, backfills, rowPassOptions(opts, settings, { dryRun: false, log, tty, reader, health }))
    if (joined.refused) {
      log(`Migration hooks: another process is running the backfills, and this one cannot help: ${joined.refused}.`)
      return false
    }
    result.joined = true
    result.summaries = joined.summaries
    result.stopped = joined.summaries.some((s) => s.outcome === 'stopped')
    const width = Math.max(0, ...joined.summaries.map((s) => s.name.length))
    log('Migration hooks: helped the row pass of the process that holds the hooks lock; it finishes the backfills:')
    for (const s of joined.summaries) log(`  ${s.name.padEnd(width)}  changed ${s.changed}, skipped ${s.skipped}`)
    return true
  } finally {
    await reader?.end().catch(() => {})
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
  const shadow = process.env.GM_SHADOW === '1'
  // Run as graphile-migrate's action, the hooks hold up graphile-migrate's own lock (and the
  // deploy that waits on it): run them only when they are small, and never wait for another run.
  const asAction = Boolean(process.env.GM_DBURL) && !args.dryRun
  if (asAction && !shadow && !(await fitsInline(databaseUrl))) return 0
  const result = await runHooks({
    databaseUrl,
    shadow,
    dryRun: args.dryRun,
    only: args.only,
    ifBusy: asAction ? 'report' : 'wait',
  })
  return result.ok ? 0 : 1
}

/**
 * Whether the backfills may run inside graphile-migrate's action: api_requests has at most
 * HOOKS_INLINE_MAX_ROWS rows (counted up to that bound, so the check stays cheap), or there
 * is nothing left to do. Otherwise says where to run them.
 */
async function fitsInline(databaseUrl: string): Promise<boolean> {
  const { inlineMaxRows } = loadSettings()
  const rows = await withClient(databaseUrl, async (c) => {
    if (!(await relationExists(c, 'public.api_requests'))) return 0
    const { rows } = await c.query(`select count(*)::bigint as n from (select 1 from public.api_requests limit $1) t`, [inlineMaxRows + 1])
    return Number(rows[0].n)
  })
  if (rows <= inlineMaxRows) return true
  const status = await hookStatus(databaseUrl)
  if (status.clean) return true
  console.log(
    `Migration hooks: api_requests has more than ${inlineMaxRows} rows (HOOKS_INLINE_MAX_ROWS); the backfills are left to ` +
      "`npm run db:backfill`, because here they would hold graphile-migrate's lock (and every other deploy) for their whole run.",
  )
  for (const line of status.lines) console.log(line)
  return false
}

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => process.exit(reportFatal(error, 'Migration hooks failed')),
  )
}
