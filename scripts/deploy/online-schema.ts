/**
 * The online half of the schema step, run right after the migrations: what the chain may not
 * do inside a transaction on the proxy's big tables, done without blocking the proxy.
 *
 * The migrations build (or drop) an index on `api_requests` or `streaming_chunks` only while
 * that table is empty (a fresh database), through migration_hooks.ensure_index() and
 * drop_index() (000001). On a table with rows a plain CREATE INDEX holds a SHARE lock — every
 * INSERT and UPDATE of the proxy waits — for the whole build, minutes to hours at production
 * size; so there they queue the statement in migration_hooks.online_index_work instead, and
 * this step runs it CONCURRENTLY: readers and writers go on, the build only waits for
 * transactions older than itself.
 *
 * Likewise constraints: on a table with rows the migrations add foreign keys and checks NOT
 * VALID (a brief lock, no scan), and this step validates those of the chain
 * (CHAIN_CONSTRAINTS), scanning under a lock that lets reads and writes through. Rows that
 * violate one are the operator's to fix, not ours to delete: the constraint stays NOT VALID
 * (new rows are checked all the same), the failure is recorded and printed with a query that
 * lists the rows, and the deploy goes on. And an index rebuilt because the database had
 * another definition under its name is swapped in.
 *
 * One process at a time runs this step, under its own advisory lock held by the session that
 * builds — so a build the server goes on running after its client died keeps the lock until
 * it ends. Another process finding the lock taken says who holds it and how far the build is,
 * and leaves the work to it: on a big table a build takes hours, and a replica starting
 * meanwhile must not wait for it, nor fail.
 *
 * Run by `db:migrate` right after its schema step (every time, so an interrupted build is
 * finished by the next deploy), and by plain graphile-migrate as an afterAllMigrations action
 * (.gmrc). With nothing queued it only reads the catalog.
 */
import type pg from 'pg'
import { advisoryLockHolder, tryAdvisoryLock } from '../../lib/advisory-lock.js'
import { openClient } from '../../lib/connection.js'
import { relationExists } from '../../lib/catalog-probe.js'
import { isMainModule } from '../../lib/entry-point.js'
import { reportFatal, UserError } from '../../lib/errors.js'

/** An arbitrary constant: "APT ONLINE SCHEMA" — distinct from the deploy and hooks locks. */
export const ONLINE_SCHEMA_LOCK_KEY = '2780337569003'

/**
 * The constraints the chain adds NOT VALID on a table with rows (000004, 000008 and the
 * ensure_check() calls); test/chain/online-step.test.ts keeps this list in step with
 * the migrations. Others (a DBA's deliberately NOT VALID constraint) are left alone.
 */
export const CHAIN_CONSTRAINTS = [
  'api_requests_parent_task_request_id_fkey',
  'api_requests_parent_request_id_fkey',
  'chk_parent_request_not_self',
  'train_members_role_check',
] as const

/** Where a validation that failed on the data is recorded, so that later deploys skip it. */
export const VALIDATION_FAILURES = 'migration_hooks.online_validation_failures'
/** The chain's queue for this step: what ensure_index() and drop_index() could not do at once. */
export const INDEX_WORK = 'migration_hooks.online_index_work'

export interface OnlineSchemaResult {
  built: string[]
  dropped: string[]
  validated: string[]
  /** Chain constraints left NOT VALID because rows violate them (recorded, printed). */
  notValidated: string[]
  /** Another process is running this step: who, and what is queued. Nothing was done. */
  busy?: string
}

type IndexState = 'missing' | 'valid' | 'invalid' | 'building'

async function indexState(client: pg.ClientBase, name: string): Promise<IndexState> {
  const { rows } = await client.query<{ valid: boolean; building: boolean }>(
    `select i.indisvalid as valid,
            exists (select 1 from pg_catalog.pg_stat_progress_create_index p where p.index_relid = i.indexrelid) as building
       from pg_catalog.pg_index i where i.indexrelid = to_regclass(format('public.%I', $1::text))`,
    [name],
  )
  const r = rows[0]
  if (!r) return 'missing'
  // Not valid yet, but a build is running (one a session outside this step started): let it end.
  return r.valid ? 'valid' : r.building ? 'building' : 'invalid'
}

/** The online_index_work rows, in order; none before the chain is applied. */
async function queuedWork(client: pg.ClientBase): Promise<QueuedWork[]> {
  if (!(await relationExists(client, INDEX_WORK))) return [] // no chain applied yet
  const { rows } = await client.query<QueuedWork>(`select name, statement, replaces from ${INDEX_WORK} order by requested_at, name`)
  return rows
}

interface QueuedWork {
  name: string
  statement: string
  replaces: string | null
}

/**
 * Who is running the online schema step, when another session is: "session 123
 * (db:migrate online schema step, from 10.0.0.5, statement since …): building idx_x (…, 41 %
 * of blocks); queued: idx_y". Null when nobody holds its lock.
 */
export async function onlineStepHolder(client: pg.ClientBase): Promise<string | null> {
  const holder = await advisoryLockHolder(client, ONLINE_SCHEMA_LOCK_KEY)
  if (!holder) return null
  const who =
    `session ${holder.pid} (${holder.applicationName || 'no application name'}${holder.clientAddress ? `, from ${holder.clientAddress}` : ''}` +
    `${holder.queryStart ? `, statement since ${holder.queryStart.toISOString()}` : ''})`
  const { rows } = await client.query<{ index: string; phase: string; pct: string | null }>(
    `select p.index_relid::regclass::text as index, p.phase,
            case when p.blocks_total > 0 then round(100.0 * p.blocks_done / p.blocks_total)::text end as pct
       from pg_catalog.pg_stat_progress_create_index p where p.pid = $1`,
    [holder.pid],
  )
  const build = rows[0] ? `: building ${rows[0].index} (${rows[0].phase}${rows[0].pct ? `, ${rows[0].pct} % of blocks` : ''})` : ''
  const queued = (await queuedWork(client)).map((w) => w.name)
  return `${who}${build}${queued.length ? `; queued: ${queued.join(', ')}` : ''}`
}

/** Run one queued statement (a build, a rebuild swapped in, or a drop); one being built elsewhere stays queued. */
async function runQueued(client: pg.ClientBase, work: QueuedWork, result: OnlineSchemaResult, log: (line: string) => void): Promise<void> {
  const { name, statement, replaces } = work
  // The queue holds only what the chain's helpers write; anything else is refused, not run.
  if (!/^(create index concurrently if not exists|drop index concurrently if exists) /i.test(statement)) {
    throw new UserError(
      `${INDEX_WORK} row "${name}" holds a statement the online schema step does not run: ${statement.slice(0, 80)}… ` +
        'Only the chain writes this table (create/drop index concurrently). Delete the row after checking where it came from.',
    )
  }
  const started = Date.now()
  if (/^drop index concurrently/i.test(statement)) {
    log(`Online schema step: dropping ${name} concurrently…`)
    await client.query(statement)
    result.dropped.push(name)
  } else {
    const state = await indexState(client, name)
    if (state === 'building') {
      log(`Online schema step: ${name} is being built by another session; leaving it queued for the next run.`)
      return
    }
    if (state === 'invalid') {
      // Left by an interrupted concurrent build: maintained on every write, never used.
      log(`Online schema step: dropping the INVALID index ${name} (an interrupted build) to rebuild it.`)
      await client.query(`drop index concurrently if exists public.${client.escapeIdentifier(name)}`)
    }
    if (state !== 'valid') {
      log(`Online schema step: building ${name} concurrently (the proxy keeps reading and writing)…`)
      await client.query(statement)
      log(`Online schema step: built ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s.`)
      result.built.push(name)
    }
    if (replaces) {
      // A rebuild: the new index is valid, so the old definition can go and the new one
      // take its name (a rename takes no lock that blocks reads or writes).
      log(`Online schema step: replacing ${replaces} (another definition) with the rebuilt index.`)
      await client.query(`drop index concurrently if exists public.${client.escapeIdentifier(replaces)}`)
      await client.query(`alter index public.${client.escapeIdentifier(name)} rename to ${client.escapeIdentifier(replaces)}`)
      result.dropped.push(replaces)
    }
  }
  await client.query(`delete from ${INDEX_WORK} where name = $1 and statement = $2`, [name, statement])
}

/** Validate one chain constraint; false when rows violate it (then recorded and explained). */
async function validate(
  client: pg.ClientBase,
  tbl: string,
  name: string,
  definition: string,
  log: (line: string) => void,
): Promise<boolean> {
  log(`Online schema step: validating ${name} on ${tbl} (reads and writes go on)…`)
  try {
    await client.query(`alter table ${tbl} validate constraint ${client.escapeIdentifier(name)}`)
    return true
  } catch (error) {
    const e = error as { code?: string; message?: string; detail?: string }
    if (e.code !== '23503' && e.code !== '23514') throw error
    const detail = [e.message, e.detail].filter(Boolean).join(' — ')
    await client.query(
      `create table if not exists ${VALIDATION_FAILURES} (
         constraint_name text primary key, table_name text not null, definition text not null,
         failed_at timestamptz not null default now(), detail text not null)`,
    )
    await client.query(
      `insert into ${VALIDATION_FAILURES} (constraint_name, table_name, definition, detail) values ($1, $2, $3, $4)
       on conflict (constraint_name) do update
         set failed_at = now(), detail = excluded.detail, table_name = excluded.table_name, definition = excluded.definition`,
      [name, tbl, definition, detail],
    )
    log(
      `Online schema step: WARNING — ${name} on ${tbl} stays NOT VALID: existing rows violate it (${detail}). ` +
        'New rows are checked all the same; no row was changed. ' +
        `List the rows with: ${violationQuery(tbl, name)} — fix them, then ` +
        `\`delete from ${VALIDATION_FAILURES} where constraint_name = '${name}'\` and the next db:migrate validates it.`,
    )
    return false
  }
}

/** A query listing the rows that violate one of CHAIN_CONSTRAINTS. */
function violationQuery(tbl: string, name: string): string {
  const fk = (column: string) =>
    `select request_id, ${column} from ${tbl} a where ${column} is not null and not exists ` +
    `(select 1 from ${tbl} p where p.request_id = a.${column});`
  if (name === 'api_requests_parent_task_request_id_fkey') return fk('parent_task_request_id')
  if (name === 'api_requests_parent_request_id_fkey') return fk('parent_request_id')
  if (name === 'chk_parent_request_not_self') return `select request_id from ${tbl} where parent_request_id = request_id;`
  return `select * from ${tbl} where not (role in ('owner', 'member'));`
}

export async function completeOnlineSchema(databaseUrl: string, log: (line: string) => void = console.log): Promise<OnlineSchemaResult> {
  const client = await openClient(databaseUrl, { applicationName: 'db:migrate online schema step', serverKeepalives: true })
  const result: OnlineSchemaResult = { built: [], dropped: [], validated: [], notValidated: [] }
  try {
    // Explicit limits, whatever the role's defaults: a concurrent build of a big index takes
    // as long as it takes, and its waits block nobody (only older transactions are awaited).
    await client.query(`select set_config('statement_timeout', '0', false), set_config('lock_timeout', '0', false)`)
    if (!(await tryAdvisoryLock(client, ONLINE_SCHEMA_LOCK_KEY))) {
      result.busy = (await onlineStepHolder(client)) ?? 'another session (which has just ended)'
      log(`Online schema step: already running in ${result.busy}. Leaving it to that process.`)
      return result
    }
    // Read again after each round: a deploy of newer code may queue more while we build.
    const seen = new Set<string>()
    for (;;) {
      const fresh = (await queuedWork(client)).filter((w) => !seen.has(`${w.name}\n${w.statement}`))
      if (!fresh.length) break
      for (const work of fresh) {
        seen.add(`${work.name}\n${work.statement}`)
        await runQueued(client, work, result, log)
      }
    }
    // A failure recorded for this very definition is not retried (it would scan the table on
    // every deploy and fail the same way); a constraint the chain has redefined since is.
    const failures = new Map<string, { definition: string; failed_at: Date }>()
    if (await relationExists(client, VALIDATION_FAILURES)) {
      const { rows } = await client.query<{ name: string; definition: string; failed_at: Date }>(
        `select constraint_name as name, definition, failed_at from ${VALIDATION_FAILURES}`,
      )
      for (const f of rows) failures.set(f.name, f)
    }
    const { rows: pending } = await client.query<{ tbl: string; name: string; definition: string }>(
      `select format('%I.%I', n.nspname, c.relname) as tbl, k.conname as name, pg_get_constraintdef(k.oid) as definition
         from pg_catalog.pg_constraint k
         join pg_catalog.pg_class c on c.oid = k.conrelid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and not k.convalidated and k.conname = any($1::text[])
        order by 1, 2`,
      [CHAIN_CONSTRAINTS],
    )
    for (const { tbl, name, definition } of pending) {
      const failed = failures.get(name)
      if (failed && failed.definition === definition) {
        log(
          `Online schema step: ${name} on ${tbl} stays NOT VALID (rows violated it at ${failed.failed_at.toISOString()}; ` +
            `see ${VALIDATION_FAILURES}). Fix the rows and delete that row to validate it.`,
        )
        result.notValidated.push(name)
      } else if (await validate(client, tbl, name, definition, log)) {
        result.validated.push(name)
        // The failure of an earlier definition is history now.
        if (failed) await client.query(`delete from ${VALIDATION_FAILURES} where constraint_name = $1`, [name])
      } else {
        result.notValidated.push(name)
      }
    }
    return result
  } finally {
    await client.end().catch(() => {})
  }
}

if (isMainModule(import.meta.url)) {
  const url = process.env.GM_DBURL ?? process.env.DATABASE_URL
  if (!url) {
    console.error('online schema step: no database (GM_DBURL is set by graphile-migrate).')
    process.exit(1)
  }
  completeOnlineSchema(url).then(
    () => process.exit(0),
    (e) => process.exit(reportFatal(e, 'the online schema step failed')),
  )
}
