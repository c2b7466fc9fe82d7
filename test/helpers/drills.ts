/**
 * Helpers for the reliability drills (test/drills): commands run in the background and killed
 * like a crashed container, polling instead of sleeping, and the database facts the drills
 * compare (sessions, applied migrations, the hooks' ledger, row checksums).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { expect } from 'vitest'
import { withClient } from './databases.js'
import { cleanEnv, nodeWithTsx, PROJECT_ROOT, projectCopy, type CliResult } from './project.js'
import { rowChecksums, tableColumns, type Checksums } from './row-checksums.js'
import { openClient } from '../../lib/connection.js'
export { seededRandom } from '../../lib/seeded-random.js'

export const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'legacy')
export const COMMITTED = join(PROJECT_ROOT, 'migrations', 'committed')

/** The committed migration files, in order. */
export function committedFiles(dir = COMMITTED): string[] {
  return readdirSync(dir)
    .filter((f) => /^\d{6}.*\.sql$/.test(f))
    .sort()
}

/** The number graphile-migrate gives the next committed migration, e.g. "000020". */
export function nextMigrationNumber(dir = COMMITTED): string {
  return String(committedFiles(dir).length + 1).padStart(6, '0')
}

/** Load a legacy fixture (test/fixtures/legacy/<file>) into an empty database. */
export async function loadFixture(url: string, file = 'script-chain.sql'): Promise<void> {
  await withClient(url, (c) => c.query(readFileSync(join(FIXTURES, file), 'utf8')))
}

/** Environment for a drill's child process: no developer DEBUG, no stray hook settings. */
export function drillEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = cleanEnv(env)
  if (!('DEBUG' in env)) delete out.DEBUG
  for (const key of Object.keys(out)) {
    if ((key.startsWith('HOOKS_') || key === 'ACCOUNT_MAPPING_FILE' || key === 'MIGRATE_LOCK_WAIT_SECONDS') && !(key in env))
      delete out[key]
  }
  return out
}

/** A command running in its own process group, so that a kill takes all of its children. */
export interface Background {
  pid: number
  /** Settles when the process ends (never rejects). */
  result: Promise<CliResult & { signal?: string }>
  /** Output so far (stdout and stderr interleaved). */
  output(): string
  exited(): boolean
  /** Kill the whole process group (tsx, node, graphile-migrate, hook children) and wait for it. */
  kill(signal?: NodeJS.Signals): Promise<CliResult & { signal?: string }>
}

/** Start one of our TypeScript scripts in the background (cwd: a project folder). */
export function startScript(script: string, args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Background {
  const child = execa(...nodeWithTsx(script, args), {
    cwd,
    env: drillEnv(env),
    extendEnv: false,
    preferLocal: true,
    localDir: PROJECT_ROOT,
    reject: false,
    all: true,
    detached: true,
    buffer: true,
  })
  let out = ''
  child.all?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  let done = false
  const result = child.then((r) => {
    done = true
    return {
      exitCode: r.exitCode ?? -1,
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
      all: String(r.all ?? out),
      signal: r.signal ?? undefined,
    }
  })
  const pid = child.pid!
  return {
    pid,
    result,
    output: () => out,
    exited: () => done,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      try {
        process.kill(-pid, signal)
      } catch {
        /* already gone */
      }
      return result
    },
  }
}

/** `scripts/cli/db.ts <args>` in the background. */
export function startDb(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Background {
  return startScript('scripts/cli/db.ts', args, env, cwd)
}

/** Run `scripts/cli/db.ts <args>` to completion. */
export function runDb(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<CliResult & { signal?: string }> {
  return startDb(args, env, cwd).result
}

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** What is awaited, for the failure message. */
  what: string
  /** Stop waiting (and fail) when this process ends first. */
  process?: Background
}

/** Poll `probe` until it returns a truthy value, and return that value. */
export async function waitFor<T>(probe: () => Promise<T | null | undefined | false>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000)
  for (;;) {
    const value = await probe()
    if (value) return value
    if (opts.process?.exited()) {
      // One last look: the condition may have become true just before the end.
      const last = await probe()
      if (last) return last
      throw new Error(`the process ended before ${opts.what}:\n${opts.process.output()}`)
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${opts.what}${opts.process ? `; output so far:\n${opts.process.output()}` : ''}`)
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50))
  }
}

export interface Session {
  pid: number
  application_name: string
  state: string | null
  wait_event_type: string | null
  blocked_by: number[]
  query: string
}

/** Other sessions connected to the database of `url` (not the one asking). */
export async function sessionsOn(url: string): Promise<Session[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<Session>(
      `select pid, application_name, state, wait_event_type, pg_blocking_pids(pid) as blocked_by, left(query, 200) as query
         from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
    )
    return rows
  })
}

/** Wait until no other session is connected (a killed client's backend can outlive it briefly). */
export async function waitForNoSessions(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await sessionsOn(url)).length === 0, {
    what: 'the killed process’s database sessions to end',
    timeoutMs,
    intervalMs: 100,
  })
}

/** pg_terminate_backend every other session on the database matching `where` (SQL on pg_stat_activity). */
export async function terminateSessions(url: string, where = 'true'): Promise<number> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend' and (${where})`,
    )
    return rows[0].n as number
  })
}

/** graphile-migrate's record of applied migrations. */
export async function appliedMigrations(url: string): Promise<Array<{ filename: string; hash: string }>> {
  return withClient(url, async (c) => {
    const { rows: exists } = await c.query(`select to_regclass('graphile_migrate.migrations') is not null as ok`)
    if (!exists[0].ok) return []
    const { rows } = await c.query('select filename, hash from graphile_migrate.migrations order by filename')
    return rows
  })
}

export interface LedgerEntry {
  name: string
  version: number
  state: string
  step: string | null
  cursor: unknown
  rows_changed: number
  rows_skipped: number
}

/** The hooks' ledger (migration_hooks.backfills), or [] before the first hook run. */
export async function ledger(url: string): Promise<LedgerEntry[]> {
  return withClient(url, async (c) => {
    const { rows: exists } = await c.query(`select to_regclass('migration_hooks.backfills') is not null as ok`)
    if (!exists[0].ok) return []
    const { rows } = await c.query(
      `select name, version, state, step, cursor, rows_changed::int, rows_skipped::int from migration_hooks.backfills order by name collate "C"`,
    )
    return rows
  })
}

/** Per-table row checksums over every column of every public table. */
export function checksums(url: string): Promise<Checksums> {
  return withClient(url, async (c) => rowChecksums(c, await tableColumns(c)))
}

/** The ledger reduced to what must not depend on how often a run was interrupted. */
export function ledgerOutcome(rows: LedgerEntry[]) {
  return rows.map((r) => ({ name: r.name, version: r.version, state: r.state, rows_changed: r.rows_changed, rows_skipped: r.rows_skipped }))
}

/**
 * A scratch project copy whose chain holds only the first `count` committed migrations: used
 * to build "the database as it is after exactly k migrations" to compare a killed run with.
 */
export function truncatedProject(count: number): string {
  const dir = projectCopy()
  for (const file of committedFiles(join(dir, 'migrations', 'committed')).slice(count)) rmSync(join(dir, 'migrations', 'committed', file))
  return dir
}

/** Hold a transaction open on a dedicated connection (e.g. to keep a lock); `release` ends it. */
export async function holdTransaction(url: string, statements: string[]): Promise<{ pid: number; release(): Promise<void> }> {
  const client = await openClient(url, { applicationName: 'drill lock holder' })
  await client.query('begin')
  for (const sql of statements) await client.query(sql)
  const { rows } = await client.query('select pg_backend_pid() as pid')
  let released = false
  return {
    pid: rows[0].pid,
    async release() {
      if (released) return
      released = true
      await client.query('rollback').catch(() => {})
      await client.end().catch(() => {})
    },
  }
}

/** Lines of a Node stack trace or crash banner. */
export function stackFrames(output: string): string[] {
  return output.split('\n').filter((line) => /^\s+at\s|^node:\w|^Node\.js v\d|Unhandled '\w+' event|^\s+\^+\s*$/.test(line))
}

/** Assert a failing command printed a clear, password-free message and no stack trace. */
export function expectCleanFailure(r: CliResult, message: RegExp): void {
  expect(r.exitCode, r.all).not.toBe(0)
  expect(r.stderr, r.all).toMatch(message)
  expect(stackFrames(r.all), r.all).toEqual([])
}

/**
 * `rows` proxy-like rows: a system prompt, and a response whose content has `entries` JSON
 * entries (so that a GIN build over the responses takes a while), then ANALYZE.
 */
export async function fillProxyLikeRows(url: string, rows: number, entries: number): Promise<void> {
  await withClient(url, (c) =>
    c.query(
      `insert into api_requests (request_id, train_id, timestamp, method, path, headers, body, response_body, model, request_type)
       select gen_random_uuid(), 'train-' || (g % 7), now() - make_interval(secs => g), 'POST', '/v1/messages', '{}'::jsonb,
              jsonb_build_object('system', 'You are helper number ' || (g % 13), 'messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'question ' || g))),
              jsonb_build_object('id', 'msg_' || g, 'role', 'assistant', 'content',
                (select jsonb_agg(jsonb_build_object('type', 'text', 'text', 'part ' || e || ' of answer ' || g, 'index', e)) from generate_series(1, $2) e)),
              'claude-' || (g % 3), 'inference'
         from generate_series(1, $1) g`,
      [rows, entries],
    ),
  )
  await withClient(url, (c) => c.query('analyze api_requests'))
}

/**
 * Settings under which a backfill waits at a closed write gate for as long as the test keeps
 * it closed, instead of giving up after HOOKS_LOCK_TIMEOUT_MS and its retries.
 */
export const GATE_PATIENT = { HOOKS_LOCK_TIMEOUT_MS: '600000', HOOKS_STATEMENT_TIMEOUT_MS: '600000' }

/**
 * A gate the test holds shut: while it is closed, every UPDATE of `table` by the migration hooks
 * (their sessions' application_name starts with "migration hooks") for which `when` holds waits
 * inside its batch for an advisory lock the test holds. So "a backfill is still running, at
 * this point" is a state the test controls, not a race against a slow process. The test's own
 * writes and the application's are never gated.
 *
 * `when` is SQL over the trigger's OLD and NEW rows; it is planned only when first evaluated,
 * so it may name tables (migration_hooks.backfills) that do not exist yet when the gate closes.
 */
export interface WriteGate {
  /** Resolves once some session waits at the gate (fails if `process` ends first). */
  waitUntilBlocked(process?: Background): Promise<void>
  /** Let the waiting and later writes through (idempotent). */
  open(): Promise<void>
  /** Open it, then drop the trigger and its function (idempotent). */
  remove(): Promise<void>
}

export interface GateOptions {
  /** The table whose updates are gated (default public.api_requests). */
  table?: string
  /** Which updates wait: SQL over OLD/NEW (default: all of them). */
  when?: string
}

/** The ledger's cursor holds a position: neither SQL NULL nor the JSON null a finished step saves. */
const cursorSet = (row: string) => `coalesce(jsonb_typeof(${row}.cursor), 'null') <> 'null'`

/** `steps` as an SQL text array (step names are the code's own constants). */
const stepArray = (steps: string[]) => `array[${steps.map((s) => `'${s}'`).join(', ')}]`

/** The ledger row of a step part-way: the step has committed a batch and is saving the next. */
export const stepPartWay = (backfill: string, steps: string[]) =>
  `old.name = '${backfill}' and old.step = any(${stepArray(steps)}) ` + `and ${cursorSet('old')} and new.cursor is distinct from old.cursor`

/**
 * A `when` for an api_requests gate: `backfill` (in one of `steps`, if given) is part-way in
 * the current runner's run — running, with a cursor, and a batch committed since this runner
 * took it on (markRunning sets heartbeat_at = runner_started_at; every committed batch moves
 * heartbeat_at on). So the `running` row a killed runner left behind does not match before
 * the next runner has done anything.
 */
export const backfillPartWay = (backfill: string, steps?: string[]) =>
  `exists (select 1 from migration_hooks.backfills b where b.name = '${backfill}' and b.state = 'running' ` +
  `and ${cursorSet('b')} and b.heartbeat_at > b.runner_started_at` +
  `${steps ? ` and b.step = any(${stepArray(steps)})` : ''})`

let gates = 0

export async function closeWriteGate(url: string, opts: GateOptions = {}): Promise<WriteGate> {
  const table = opts.table ?? 'public.api_requests'
  // Below 2^31: pg_locks shows the key whole in objid (classid 0).
  const key = 1 + Math.floor(Math.random() * 2_000_000_000)
  const name = `drill_write_gate_${process.pid}_${++gates}`
  const holder = await openClient(url, { applicationName: 'drill write gate' })
  await holder.query('select pg_advisory_lock($1::bigint)', [key])
  await withClient(url, (c) =>
    c.query(`create function public.${name}() returns trigger language plpgsql as $$
               begin
                 if current_setting('application_name') like 'migration hooks%' then
                   if ${opts.when ?? 'true'} then perform pg_advisory_xact_lock_shared(${key}::bigint); end if;
                 end if;
                 return new;
               end $$;
             create trigger ${name} before update on ${table} for each row execute function public.${name}()`),
  )
  let opened = false
  let removed = false
  const open = async () => {
    if (opened) return
    opened = true
    await holder.query('select pg_advisory_unlock($1::bigint)', [key]).catch(() => {})
    await holder.end().catch(() => {})
  }
  return {
    async waitUntilBlocked(process?: Background) {
      await waitFor(
        () =>
          withClient(url, async (c) => {
            const { rows } = await c.query(
              `select 1 from pg_locks where locktype = 'advisory' and classid = 0 and objid = $1::bigint::oid and not granted`,
              [key],
            )
            return rows.length > 0
          }),
        { what: 'a backfill batch to wait at the write gate', process, timeoutMs: 300_000 },
      )
    },
    open,
    async remove() {
      await open()
      if (removed) return
      removed = true
      await withClient(url, (c) => c.query(`drop trigger if exists ${name} on ${table}; drop function if exists public.${name}()`))
    },
  }
}
