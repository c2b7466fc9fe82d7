/**
 * Runs a migration's SQL in a transaction on a scratch database and reports, per table, what
 * it did, then rolls everything back. It watches the server, not the text: statements inside
 * `do $$ … $$` blocks, `execute` strings and functions count like any other.
 *
 * Read inside the transaction, before and after the SQL:
 *  - the locks this session holds (pg_locks): held until the transaction ends, so at the end
 *    they are every lock the migration took; a lock on an index is folded onto its table;
 *  - each table's and index's relfilenode: a new one means the table (or index) was rewritten;
 *  - pg_stat_xact_user_tables: scans, rows read, inserted, updated, deleted by this
 *    transaction (the view includes counts not yet flushed from earlier transactions of the
 *    session, hence before/after);
 *  - indexes that exist after but not before (a plain CREATE INDEX);
 *  - what the migration queued for the online schema step, and constraints it left NOT VALID.
 */
import type pg from 'pg'
import { explain } from '../../lib/errors.js'
import { hotTableNamed } from '../../lib/hot-tables.js'
import { isLockMode, type LockMode, strongest } from './lock-modes.js'

export interface TableTrace {
  /** schema.name */
  table: string
  hot: boolean
  /** Created by the traced SQL itself: nobody else can be using it. */
  created: boolean
  /** Its name before the SQL, when the SQL renamed it (a hot table is hot by its old name). */
  renamedFrom?: string
  /** Dropped by the SQL. */
  dropped?: boolean
  /** The strongest lock taken on the table or one of its indexes. */
  lock: LockMode | null
  /** The index the strongest lock was taken on, when it was not the table itself. */
  lockVia?: string
  rewritten: boolean
  /** Indexes built in place (CREATE INDEX, REINDEX): new, or given a new relfilenode. */
  indexesBuilt: string[]
  seqScans: number
  rowsRead: number
  rowsInserted: number
  rowsUpdated: number
  rowsDeleted: number
}

export interface QueuedWork {
  name: string
  statement: string
}

export interface Trace {
  tables: TableTrace[]
  /** Rows the SQL added to (or changed in) migration_hooks.online_index_work. */
  queued: QueuedWork[]
  /** Constraints the SQL added NOT VALID: left for the online schema step to validate. */
  notValid: string[]
  /** The SQL failed: its message; nothing else is reported. */
  error?: string
  /** The SQL committed (or rolled back) the transaction itself: its changes may have stayed. */
  endedOwnTransaction?: boolean
  /** A `--! no-transaction` file's one CONCURRENTLY statement, checked by its text (trace-file.ts). */
  concurrent?: string
}

interface Relation {
  oid: number
  name: string
  kind: string
  filenode: string
  /** For an index: its table's oid. */
  table: number | null
}

interface Counters {
  seq_scan: number
  seq_tup_read: number
  idx_tup_fetch: number
  n_tup_ins: number
  n_tup_upd: number
  n_tup_del: number
}

/** The schemas of graphile-migrate and of the hooks. */
const TOOL_SCHEMAS = ['graphile_migrate', 'migration_hooks']

/** The session setting that tells whether the traced SQL ended our transaction itself. */
const OPEN_MARK = 'migration_trace.open'

// Permanent tables, materialized views and their indexes outside the system schemas.
const RELATIONS_SQL = `
  select c.oid::int as oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name, c.relkind::text as kind,
         c.relfilenode::text as filenode, i.indrelid::int as "table"
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    left join pg_catalog.pg_index i on i.indexrelid = c.oid
   where c.relkind in ('r', 'p', 'm', 'i') and c.relpersistence <> 't'
     and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`

const COUNTERS_SQL = `
  select relid::int as oid, seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) as idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del
    from pg_catalog.pg_stat_xact_user_tables`

const LOCKS_SQL = `
  select relation::int as oid, mode from pg_catalog.pg_locks
   where pid = pg_catalog.pg_backend_pid() and locktype = 'relation' and granted`

const NOT_VALID_SQL = `
  select quote_ident(n.nspname) || '.' || quote_ident(t.relname) || ' ' || quote_ident(c.conname) as name
    from pg_catalog.pg_constraint c
    join pg_catalog.pg_class t on t.oid = c.conrelid
    join pg_catalog.pg_namespace n on n.oid = t.relnamespace
   where not c.convalidated and t.relpersistence <> 't'`

async function relations(client: pg.ClientBase): Promise<Map<number, Relation>> {
  const { rows } = await client.query<Relation>(RELATIONS_SQL)
  return new Map(rows.map((r) => [r.oid, r]))
}

async function counters(client: pg.ClientBase): Promise<Map<number, Counters>> {
  const { rows } = await client.query(COUNTERS_SQL)
  return new Map(rows.map((r) => [r.oid, Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])) as unknown as Counters]))
}

async function queuedWork(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows: exists } = await client.query(`select pg_catalog.to_regclass('migration_hooks.online_index_work') is not null as ok`)
  if (!exists[0].ok) return new Map()
  const { rows } = await client.query<QueuedWork>('select name, statement from migration_hooks.online_index_work')
  return new Map(rows.map((r) => [r.name, r.statement]))
}

async function notValidConstraints(client: pg.ClientBase): Promise<Set<string>> {
  return new Set((await client.query<{ name: string }>(NOT_VALID_SQL)).rows.map((r) => r.name))
}

interface Snapshot {
  relations: Map<number, Relation>
  counters: Map<number, Counters>
  queued: Map<string, string>
  notValid: Set<string>
}

async function snapshot(client: pg.ClientBase): Promise<Snapshot> {
  return {
    relations: await relations(client),
    counters: await counters(client),
    queued: await queuedWork(client),
    notValid: await notValidConstraints(client),
  }
}

const ZERO: Counters = { seq_scan: 0, seq_tup_read: 0, idx_tup_fetch: 0, n_tup_ins: 0, n_tup_upd: 0, n_tup_del: 0 }

function tableTraces(before: Snapshot, after: Snapshot, locks: { oid: number; mode: string }[]): TableTrace[] {
  const traces = new Map<number, TableTrace>()
  const traceOf = (oid: number): TableTrace | undefined => {
    const rel = after.relations.get(oid)
    if (!rel || rel.kind === 'i') return undefined
    let t = traces.get(oid)
    if (!t) {
      const was = before.relations.get(oid)
      const c0 = before.counters.get(oid) ?? ZERO
      const c1 = after.counters.get(oid) ?? ZERO
      // Hot by the name it had: `alter table api_requests rename to x` and then rewriting x
      // rewrites the proxy's table. A new table under a hot table's name (a swap) is hot too.
      const name = was?.name ?? rel.name
      t = {
        table: name,
        ...(was && was.name !== rel.name ? { renamedFrom: was.name, table: rel.name } : {}),
        hot: hotTableNamed(name) !== undefined || hotTableNamed(rel.name) !== undefined,
        created: !was,
        lock: null,
        rewritten: Boolean(was && was.filenode !== rel.filenode),
        indexesBuilt: [],
        seqScans: c1.seq_scan - c0.seq_scan,
        rowsRead: c1.seq_tup_read - c0.seq_tup_read + (c1.idx_tup_fetch - c0.idx_tup_fetch),
        rowsInserted: c1.n_tup_ins - c0.n_tup_ins,
        rowsUpdated: c1.n_tup_upd - c0.n_tup_upd,
        rowsDeleted: c1.n_tup_del - c0.n_tup_del,
      }
      traces.set(oid, t)
    }
    return t
  }
  // The table's own locks first: an index's lock is named only when it is the stronger one.
  const tablesFirst = [...locks].sort(
    (a, b) => Number(after.relations.get(a.oid)?.kind === 'i') - Number(after.relations.get(b.oid)?.kind === 'i'),
  )
  for (const { oid, mode } of tablesFirst) {
    if (!isLockMode(mode)) continue
    const rel = after.relations.get(oid)
    // An index this transaction created is seen by nobody else until it commits: its lock blocks no one.
    if (!rel || (rel.kind === 'i' && !before.relations.has(oid))) continue
    const t = traceOf(rel.kind === 'i' ? (rel.table ?? -1) : oid)
    if (!t) continue
    const best = strongest([mode, ...(t.lock ? [t.lock] : [])])
    if (best !== t.lock) {
      t.lock = best
      t.lockVia = rel.kind === 'i' ? rel.name : undefined
    }
  }
  for (const [oid, rel] of after.relations) {
    if (rel.kind !== 'i') {
      traceOf(oid) // every table, so that one the SQL only read (no lock left) still counts
      continue
    }
    const was = before.relations.get(oid)
    if ((!was || was.filenode !== rel.filenode) && rel.table !== null) traceOf(rel.table)?.indexesBuilt.push(rel.name)
  }
  // Tables the SQL dropped (their locks went with them).
  for (const [oid, was] of before.relations) {
    if (was.kind === 'i' || after.relations.has(oid)) continue
    traces.set(oid, {
      table: was.name,
      hot: hotTableNamed(was.name) !== undefined,
      created: false,
      dropped: true,
      lock: 'AccessExclusiveLock',
      rewritten: false,
      indexesBuilt: [],
      seqScans: 0,
      rowsRead: 0,
      rowsInserted: 0,
      rowsUpdated: 0,
      rowsDeleted: 0,
    })
  }
  // Keep the tables the SQL did something to, but not the tools' own bookkeeping (what the
  // SQL queued for the online step is reported as such).
  return [...traces.values()]
    .filter((t) => !TOOL_SCHEMAS.some((schema) => t.table.startsWith(`${schema}.`)))
    .filter(
      (t) =>
        t.lock !== null ||
        t.created ||
        t.dropped ||
        t.rewritten ||
        t.indexesBuilt.length > 0 ||
        t.seqScans + t.rowsRead + t.rowsInserted + t.rowsUpdated + t.rowsDeleted > 0,
    )
    .sort((a, b) => Number(b.hot) - Number(a.hot) || a.table.localeCompare(b.table))
}

export interface TraceSettings {
  /** Session settings graphile-migrate would use (.gmrc pgSettings), set for the transaction. */
  settings?: Record<string, string>
}

/** Trace `sql` on `client` (a scratch database), then roll it back. */
export async function traceSql(client: pg.ClientBase, sql: string, opts: TraceSettings = {}): Promise<Trace> {
  await client.query('begin')
  try {
    for (const [name, value] of Object.entries(opts.settings ?? {}))
      await client.query('select pg_catalog.set_config($1, $2, true)', [name, value])
    await client.query(`select pg_catalog.set_config('${OPEN_MARK}', 'yes', true)`)
    const before = await snapshot(client)
    try {
      await client.query(sql)
    } catch (error) {
      return { tables: [], queued: [], notValid: [], error: explain(error) }
    }
    const { rows: open } = await client.query(`select pg_catalog.current_setting('${OPEN_MARK}', true) = 'yes' as ok`)
    if (!open[0].ok) {
      return {
        tables: [],
        queued: [],
        notValid: [],
        error:
          'the SQL ended its own transaction (COMMIT or ROLLBACK): graphile-migrate runs each migration in one transaction; remove them',
        endedOwnTransaction: true,
      }
    }
    const locks = (await client.query<{ oid: number; mode: string }>(LOCKS_SQL)).rows
    const after = await snapshot(client)
    return {
      tables: tableTraces(before, after, locks),
      queued: [...after.queued]
        .filter(([name, statement]) => before.queued.get(name) !== statement)
        .map(([name, statement]) => ({ name, statement })),
      notValid: [...after.notValid].filter((c) => !before.notValid.has(c)).sort(),
    }
  } finally {
    await client.query('rollback')
  }
}
