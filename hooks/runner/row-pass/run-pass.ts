/**
 * The row pass: every pending per-row backfill (row-rule.ts) in one walk of api_requests in
 * physical order and one UPDATE per changed row, then a final pass for rows that concurrent
 * updates moved behind the walk.
 *
 *  1. Each backfill is resolved against its own ledger entry as batch-runner.ts does it (a
 *     version or input change starts it over; done ones stay done; a skip is recorded). The
 *     rest take part.
 *  2. The pass state (state.ts) is resumed when it was begun for exactly these participants;
 *     otherwise a new pass begins from the first page. (Rows a previous pass already handled
 *     are no longer pending: the new walk reads their cheap columns and moves on.)
 *  3. HOOKS_WORKERS sessions of this process claim and walk chunks (walk.ts); runners in other
 *     processes may join (`joinRowPass`). When no chunk is free, this runner waits for the
 *     chunks others still hold, taking over any whose runner stopped sending heartbeats.
 *  4. The final pass (catch-up.ts), then every participant is marked done and the state
 *     dropped, in one transaction.
 */
import { hostname } from 'node:os'
import type pg from 'pg'
import { explain } from '../../../lib/errors.js'
import { redact } from '../../../lib/redact.js'
import { sleep } from '../../../lib/retry.js'
import { type Backfill, decidesBeforeRowPass, type HookSettings, ROW_PASS_PHASES, rulesOf } from '../backfill.js'
import { batchSizer } from '../batch-sizer.js'
import { checkpointWatch, NO_CHECKPOINT_WATCH } from '../checkpoint-watch.js'
import type { BackfillSummary } from '../batch-runner.js'
import { type GinMerger, ginMerger, NO_GIN_MERGES } from '../gin-pending.js'
import { type HealthGate, NO_THROTTLE } from '../health/throttle.js'
import { type HeapReclaimer, heapReclaimer, NO_RECLAIM } from './reclaim.js'
import { estimateRows } from '../key-walk.js'
import { markDone, markFailed, markRunning, markStopped, readEntry, startStep } from '../ledger.js'
import { resolveEntry } from '../resolve-entry.js'
import { dropRetiredTables } from '../retired-tables.js'
import { setParameters } from '../parameters.js'
import { type Progress, startProgress } from '../progress.js'
import { HIGH_WATER_SETTING } from '../high-water.js'
import { runCatchUp } from './catch-up.js'
import {
  beginPass,
  MAX_PASS_TRANSACTIONS,
  chunksLeft,
  dropStateTables,
  ensureStateTables,
  type PassMember,
  type PassState,
  readPass,
  sameMembers,
  setPhase,
  transactionsSince,
} from './state.js'
import { type Participant, participantNames } from './sql.js'
import { Tally, tallyOf } from './tally.js'
import { type PassRun, runWalkWorker, type WorkerEnd } from './walk.js'

export interface RowPassOptions {
  settings: HookSettings
  dryRun: boolean
  log: (line: string) => void
  tty: boolean
  /** The read-ahead session of the main runner (none in a dry run). */
  reader?: pg.ClientBase
  /** Opens one more pair of sessions for another worker (HOOKS_WORKERS > 1). */
  openWorkerSessions?: () => Promise<{ writer: pg.Client; reader: pg.Client }>
  /** Opens the session that vacuums the walked part of the heap (reclaim.ts); none: no vacuum. */
  openMaintenanceSession?: () => Promise<pg.Client>
  shouldStop?: () => string | undefined
  /**
   * Asked before every batch transaction by every worker of this process (the owner's and a
   * joining runner's alike): waits while the database is unhealthy (health/throttle.ts).
   */
  health?: HealthGate
}

/** The per-row backfills among `backfills`, in their order. */
export const rowBackfills = (backfills: readonly Backfill[]): Backfill[] => backfills.filter((b) => b.row !== undefined)

/** One participant per rule of the backfill. */
export const participantsOf = (backfill: Backfill, input: unknown): Participant[] =>
  rulesOf(backfill).map((rule) => ({ name: backfill.name, rule, input }))

/** The functions the rules of `backfills` call (their `setupSql`), created or replaced. */
export async function setupRules(client: pg.ClientBase, backfills: readonly Backfill[]): Promise<void> {
  for (const backfill of backfills) for (const sql of backfill.setupSql ?? []) await client.query(sql)
}

/** This process's name in chunk claims: host, pid and worker number. */
const runnerName = (worker: number) => `${hostname()}:${process.pid}:${worker}`

interface Resolved {
  summaries: Map<string, BackfillSummary>
  /** The backfills taking part. */
  backfills: Backfill[]
  members: PassMember[]
  participants: Participant[]
}

/** Step 1: each backfill against its ledger entry; those left take part. */
async function resolve(client: pg.ClientBase, backfills: Backfill[], opts: RowPassOptions): Promise<Resolved> {
  const summaries = new Map<string, BackfillSummary>()
  const members: PassMember[] = []
  const participants: Participant[] = []
  const taking: Backfill[] = []
  for (const backfill of backfills) {
    const started = Date.now()
    const summary: BackfillSummary = { name: backfill.name, outcome: 'done', changed: 0, skipped: 0, durationMs: 0 }
    summaries.set(backfill.name, summary)
    const resolution = await resolveEntry(client, backfill, opts.settings, opts.dryRun)
    if (resolution.kind === 'failed') {
      const { error, cause, failureRecorded } = resolution
      Object.assign(summary, { outcome: 'failed', error, cause, failureRecorded, durationMs: Date.now() - started })
      continue
    }
    if (resolution.kind !== 'run') {
      Object.assign(summary, { outcome: resolution.kind, note: resolution.note })
      continue
    }
    const { prepared, configKey, entry } = resolution
    // A backfill with steps takes part once they are done (run.ts runs them first).
    if (backfill.steps.length > 0 && !ROW_PASS_PHASES.includes(entry.step ?? '')) {
      Object.assign(summary, { outcome: 'skipped', note: 'its steps before the row pass have not finished' })
      continue
    }
    members.push({ name: backfill.name, version: backfill.version, configKey })
    participants.push(...participantsOf(backfill, prepared.input))
    taking.push(backfill)
  }
  return { summaries, backfills: taking, members, participants }
}

/** Step 2: resume the recorded pass if it is this one, else begin a new one. */
async function passFor(client: pg.ClientBase, resolved: Resolved, opts: RowPassOptions): Promise<PassState> {
  // Each participant is recorded as running by this process; the pass's mark is the earliest.
  const marks: string[] = []
  for (const m of resolved.members) marks.push(await markRunning(client, m.name))
  const { rows } = await client.query<{ mark: string }>(`select min(m)::text as mark from unnest($1::timestamptz[]) m`, [marks])
  await ensureStateTables(client)
  await setupRules(client, resolved.backfills)
  const recorded = await readPass(client)
  if (recorded && sameMembers(recorded.members, resolved.members)) {
    if ((await transactionsSince(client, recorded)) <= MAX_PASS_TRANSACTIONS) return recorded
    opts.log(`Row pass: the recorded pass began more than ${MAX_PASS_TRANSACTIONS} transactions ago; beginning it again.`)
  }
  return beginPass(client, resolved.members, rows[0].mark, opts.dryRun)
}

/** HOOKS_WORKERS workers walk free chunks at once: this session pair and `extra` more. */
async function walkWithWorkers(
  run: PassRun,
  client: pg.ClientBase,
  reader: pg.ClientBase,
  opts: RowPassOptions,
  extra: { writer: pg.Client; reader: pg.Client }[],
  workers: number,
): Promise<string | undefined> {
  for (let w = 1; w < workers && opts.openWorkerSessions; w++) {
    const sessions = await opts.openWorkerSessions()
    await setParameters(sessions.reader, { [HIGH_WATER_SETTING]: run.pass.highWater }, 'session')
    extra.push(sessions)
  }
  const ends: WorkerEnd[] = await Promise.all([
    runWalkWorker(run, client, reader, runnerName(0)),
    ...extra.map((s, i) => runWalkWorker(run, s.writer, s.reader, runnerName(i + 1))),
  ])
  return ends.find((e): e is { stopped: string } => e !== 'finished')?.stopped
}

async function closeWorkers(extra: { writer: pg.Client; reader: pg.Client }[]): Promise<void> {
  for (const s of extra) {
    await s.writer.end().catch(() => {})
    await s.reader.end().catch(() => {})
  }
}

/**
 * What the workers of this process share, set up the same way for the owner and a helper:
 * the reader's high-water mark, the GIN merger, and a progress display starting at `walked`.
 */
async function startPassRun(
  client: pg.ClientBase,
  reader: pg.ClientBase,
  participants: Participant[],
  pass: PassState,
  opts: RowPassOptions,
  tally: Tally,
  label: string,
  walked: number,
): Promise<{ run: PassRun; progress: Progress; total: number }> {
  await setParameters(reader, { [HIGH_WATER_SETTING]: pass.highWater }, 'session')
  const gin = reader !== client ? await ginMerger(client, reader, ['api_requests'], (line) => opts.log(`row pass: ${line}`)) : NO_GIN_MERGES
  const total = await estimateRows(client)
  const reclaim =
    opts.openMaintenanceSession && !opts.dryRun
      ? heapReclaimer(opts.openMaintenanceSession, pass.totalPages, opts.settings.reclaimEveryPercent, opts.log)
      : NO_RECLAIM
  const progress = startProgress({ label, total, log: opts.log, intervalMs: opts.settings.progressIntervalMs, tty: opts.tty })
  const run: PassRun = {
    participants,
    pass,
    settings: opts.settings,
    dryRun: opts.dryRun,
    sizer: batchSizer(opts.settings.batchSize, opts.settings.batchTargetMs),
    // A dry run writes nothing (its batches are rolled back), so checkpoints cost it nothing.
    checkpoints: opts.dryRun ? NO_CHECKPOINT_WATCH : await checkpointWatch(client, opts.log),
    gin,
    reclaim,
    tally,
    log: opts.log,
    onWalked: (rows, batchRows) => {
      walked += rows
      progress.update(walked, batchRows)
    },
    shouldStop: opts.shouldStop,
    health: opts.health ?? NO_THROTTLE,
  }
  return { run, progress, total }
}

export async function runRowPass(client: pg.ClientBase, backfills: Backfill[], opts: RowPassOptions): Promise<BackfillSummary[]> {
  const started = Date.now()
  const resolved = await resolve(client, backfills, opts)
  const ordered = () => backfills.map((b) => resolved.summaries.get(b.name)!)
  if (resolved.participants.length === 0) return ordered()
  const names = participantNames(resolved.participants)
  const finish = (outcome: BackfillSummary['outcome'], extra: Partial<BackfillSummary> = {}, tally?: Tally) => {
    for (const name of names) {
      const summary = resolved.summaries.get(name)!
      Object.assign(summary, { outcome, durationMs: Date.now() - started, ...extra })
      if (tally) Object.assign(summary, { ...tallyOf(tally, name), phases })
    }
    return ordered()
  }

  const extra: { writer: pg.Client; reader: pg.Client }[] = []
  // Seconds in the walk and in the final pass, shared by the participants' summaries.
  const phases: Record<string, number> = {}
  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const begun = Date.now()
    try {
      return await work()
    } finally {
      phases[phase] = (phases[phase] ?? 0) + (Date.now() - begun) / 1000
    }
  }
  let gin: GinMerger = NO_GIN_MERGES
  let reclaim: HeapReclaimer = NO_RECLAIM
  const tally = new Tally(resolved.participants)
  try {
    const pass = await passFor(client, resolved, opts)
    const reader = opts.reader && !opts.dryRun ? opts.reader : client
    const label = `row pass (${names.join(', ')})`
    const { run, progress, total } = await startPassRun(client, reader, resolved.participants, pass, opts, tally, label, 0)
    gin = run.gin
    reclaim = run.reclaim
    if (!opts.dryRun) for (const name of names) await startStep(client, name, total, pass.phase === 'catch-up')
    try {
      // Stopped on request: pending again, resumable by any runner.
      const stopAt = async (note: string) => {
        await gin.settled()
        await reclaim.settled()
        if (!opts.dryRun) for (const name of names) await markStopped(client, name, note)
        return finish('stopped', { note }, tally)
      }
      if (pass.phase === 'walk') {
        const stopped = await timed('walk', () =>
          walkWithWorkers(run, client, reader, opts, extra, opts.dryRun ? 1 : opts.settings.workers),
        )
        if (stopped) return stopAt(stopped)
        // Chunks other runners still hold: wait for them, taking over a dead one's.
        while ((await chunksLeft(client)).left > 0) {
          const stop = opts.shouldStop?.()
          if (stop) return stopAt(stop)
          await sleep(1000)
          const end = await runWalkWorker(run, client, reader, runnerName(0))
          if (end !== 'finished') return stopAt(end.stopped)
        }
        await setPhase(client, 'catch-up')
      }
      // The walk's last stretch vacuumed too, so that the final pass's writes and the proxy's
      // next inserts reuse the space of the versions it replaced instead of extending the heap.
      await timed('vacuum', () => reclaim.finish())
      // The walk's last GIN merges run on the reader, which the final pass is about to hold in
      // one read-only snapshot: they finish first.
      await timed('gin merges', () => gin.settled())
      const caughtUp = await timed('final pass', () => runCatchUp(run, client, reader))
      if (caughtUp !== 'finished') return stopAt(caughtUp.stopped)
      if (!opts.dryRun) {
        await client.query('begin')
        try {
          for (const name of names) await markDone(client, name)
          for (const backfill of backfills) if (names.includes(backfill.name)) await backfill.afterRowPass?.(client)
          await dropStateTables(client)
          await client.query('commit')
        } catch (error) {
          await client.query('rollback').catch(() => {})
          throw error
        }
        // The scratch tables retired above, each in a transaction of its own. Done is done: a
        // failure here only leaves them to the next run's start.
        await timed('drop scratch', () => dropRetiredTables(client)).catch((error) =>
          opts.log(`row pass: retired scratch tables left for the next run to drop (${redact(explain(error))})`),
        )
      }
      return finish('done', {}, tally)
    } finally {
      progress.stop()
    }
  } catch (error) {
    await gin.settled()
    await reclaim.settled()
    const message = redact(explain(error))
    let failureRecorded = false
    if (!opts.dryRun) {
      failureRecorded = true
      for (const name of names) await markFailed(client, name, message).catch(() => (failureRecorded = false))
    }
    return finish('failed', { error: message, cause: error, failureRecorded }, tally)
  } finally {
    await closeWorkers(extra)
  }
}

export interface JoinResult {
  /** Why this process could not help (nothing to join, or another version of the code). */
  refused?: string
  /** What this process wrote, per participant. */
  summaries: BackfillSummary[]
}

/**
 * Help a row pass that another process runs (it holds the hooks lock): claim and walk free
 * chunks with HOOKS_WORKERS sessions until none is left, then return. The owner does the
 * final pass and marks the backfills done. Refused when no walk is in progress, or when this
 * process's backfills differ from the pass's (version, input): its rules would compute other
 * values.
 */
export async function joinRowPass(client: pg.ClientBase, backfills: Backfill[], opts: RowPassOptions): Promise<JoinResult> {
  const started = Date.now()
  const pass = await readPass(client)
  if (pass?.phase !== 'walk') return { refused: 'no row pass is walking', summaries: [] }
  // The recorded pass may be an earlier run's, which the runner holding the lock replaces once
  // its deciding steps are done: helping it now would write rows that pass writes again.
  for (const backfill of backfills.filter(decidesBeforeRowPass)) {
    const entry = await readEntry(client, backfill.name)
    if (entry?.state !== 'done' && !ROW_PASS_PHASES.includes(entry?.step ?? '')) {
      return { refused: `${backfill.name} is still deciding (its steps run before the walk), so the walk has not begun`, summaries: [] }
    }
  }
  const participants: Participant[] = []
  for (const member of pass.members) {
    const backfill = rowBackfills(backfills).find((b) => b.name === member.name)
    if (!backfill || backfill.version !== member.version) {
      return { refused: `the pass runs ${member.name} v${member.version}, which this code does not have`, summaries: [] }
    }
    const prepared = (await backfill.prepare?.(opts.settings)) ?? {}
    if ((prepared.configKey ?? null) !== member.configKey) {
      return { refused: `${member.name}'s input here (e.g. ACCOUNT_MAPPING_FILE) differs from the pass's`, summaries: [] }
    }
    participants.push(...participantsOf(backfill, prepared.input))
  }
  const reader = opts.reader ?? client
  const tally = new Tally(participants)
  const extra: { writer: pg.Client; reader: pg.Client }[] = []
  const label = `row pass, helping (${participantNames(participants).join(', ')})`
  const walked = (await chunksLeft(client)).pagesDone * pass.rowsPerPage
  const { run, progress } = await startPassRun(client, reader, participants, pass, { ...opts, dryRun: false }, tally, label, walked)
  const gin = run.gin
  let outcome: BackfillSummary['outcome'] = 'done'
  let note: string | undefined
  try {
    const stopped = await walkWithWorkers(run, client, reader, opts, extra, opts.settings.workers)
    if (stopped) {
      outcome = 'stopped'
      note = stopped
    }
    await gin.settled()
  } finally {
    await run.reclaim.settled()
    progress.stop()
    await closeWorkers(extra)
  }
  return {
    summaries: participantNames(participants).map((name) => ({
      name,
      outcome,
      note: note ?? 'helped the row pass of another runner, which finishes it',
      ...tallyOf(tally, name),
      durationMs: Date.now() - started,
    })),
  }
}
