/**
 * The row pass's shared state, in the hooks' schema, so that any runner on any machine can see
 * it, join it and take over a dead runner's part:
 *  - `row_pass`: the one pass in progress — which backfills (at which version and input) take
 *    part, the high-water mark, the snapshot at its start (which transactions had committed),
 *    the heap's size then, and its phase (walk, then catch-up);
 *  - `row_pass_chunks`: the heap split into page ranges. A runner claims a chunk (a lease:
 *    its name, its database session and a heartbeat), walks it batch by batch — each batch's
 *    writes and the chunk's new position commit in one transaction — and marks it done. A
 *    chunk whose runner's session is gone (a killed process: at once) or whose heartbeat is
 *    older than the lease (a frozen or unreachable one) is free again, and whoever claims it
 *    next resumes at its recorded position;
 *  - `row_pass_writes`: the transaction id of every batch that wrote rows (see XID_TABLE).
 * Both tables are dropped when the pass completes.
 */
import type pg from 'pg'
import { LEDGER_SCHEMA } from '../ledger.js'
import { hasColumn, relationExists } from '../../../lib/catalog-probe.js'

export const PASS_TABLE = `${LEDGER_SCHEMA}.row_pass`
export const CHUNK_TABLE = `${LEDGER_SCHEMA}.row_pass_chunks`
/**
 * The transactions of the pass's own writes. A row version one of them wrote was handled by
 * every rule already: the walk must not count it again where an UPDATE moved it to a page
 * not yet walked, and the final pass must not take it for a row the application moved.
 */
export const XID_TABLE = `${LEDGER_SCHEMA}.row_pass_writes`

/** Who takes part: a participant's identity as the ledger knows it. */
export interface PassMember {
  name: string
  version: number
  configKey: string | null
}

export interface PassState {
  members: PassMember[]
  highWater: string
  /**
   * The snapshot taken when the walk began (pg_snapshot, as text). Row versions from its
   * xmin on may have been written after the walk began (see sql.ts, catchUpRead).
   */
  startSnapshot: string
  totalPages: number
  rowsPerPage: number
  phase: 'walk' | 'catch-up'
}

export interface Chunk {
  chunk: number
  firstPage: number
  endPage: number
  nextPage: number
}

export async function ensureStateTables(client: pg.ClientBase): Promise<void> {
  // A pass recorded by an older layout of these tables (a stopped pass, then an upgrade) is
  // begun again: every write is guarded, so a new pass only re-reads what is still pending.
  if ((await relationExists(client, PASS_TABLE)) && !(await currentLayout(client))) await dropStateTables(client)
  await client.query(`create table if not exists ${PASS_TABLE} (
    id integer primary key default 1 check (id = 1),
    members jsonb not null,
    high_water timestamptz not null,
    start_snapshot pg_snapshot not null,
    total_pages bigint not null,
    rows_per_page float8 not null,
    phase text not null check (phase in ('walk', 'catch-up')),
    started_at timestamptz not null default now()
  )`)
  await client.query(`create table if not exists ${CHUNK_TABLE} (
    chunk integer primary key,
    first_page bigint not null,
    end_page bigint not null,
    next_page bigint not null,
    done boolean not null default false,
    claimed_by text,
    claimed_backend integer,
    heartbeat_at timestamptz
  )`)
  await client.query(`create table if not exists ${XID_TABLE} (xid xid8 primary key)`)
}

/** The (32-bit) ids of the pass's own write transactions, as a text array literal for an `xid[]` parameter. */
export async function ownTransactions(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ ids: string }>(`select coalesce(array_agg(xid(xid)), '{}')::text as ids from ${XID_TABLE}`)
  return rows[0].ids
}

/** Inside a batch transaction that wrote rows: its transaction id is the pass's own. */
export async function recordOwnWrite(client: pg.ClientBase): Promise<void> {
  await client.query(`insert into ${XID_TABLE} (xid) values (pg_current_xact_id()) on conflict do nothing`)
}

/** SQL: the pages api_requests' heap has now (the walk's and the final pass's extent). */
const HEAP_PAGES = `(pg_relation_size('public.api_requests') / current_setting('block_size')::bigint)`

export async function heapPages(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ pages: string }>(`select ${HEAP_PAGES}::text as pages`)
  return Number(rows[0].pages)
}

/** Whether the pass table has this version's layout (a pass recorded by older code has not). */
const currentLayout = (client: pg.ClientBase) => hasColumn(client, PASS_TABLE, 'start_snapshot')

/** The recorded pass; none when there is none, or when older code recorded it (it is begun again). */
export async function readPass(client: pg.ClientBase): Promise<PassState | null> {
  if (!(await relationExists(client, PASS_TABLE)) || !(await currentLayout(client))) return null
  const { rows: pass } = await client.query(
    `select members, high_water::text, start_snapshot::text, total_pages::float8, rows_per_page, phase from ${PASS_TABLE}`,
  )
  const r = pass[0]
  if (!r) return null
  return {
    members: r.members,
    highWater: r.high_water,
    startSnapshot: r.start_snapshot,
    totalPages: Number(r.total_pages),
    rowsPerPage: r.rows_per_page,
    phase: r.phase,
  }
}

/**
 * Transactions since the pass began (its snapshot's xmax), as the server counts them now. The
 * final pass compares 32-bit transaction ids (a row's `xmin`), which are only ordered within
 * 2^31 of each other: a pass resumed after about a billion transactions is begun again.
 */
export async function transactionsSince(client: pg.ClientBase, pass: PassState): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `select (pg_snapshot_xmax(pg_current_snapshot())::text::numeric - pg_snapshot_xmax($1::pg_snapshot)::text::numeric)::text as n`,
    [pass.startSnapshot],
  )
  return Number(rows[0].n)
}

/** Beyond this many transactions a recorded pass is begun again (see transactionsSince). */
export const MAX_PASS_TRANSACTIONS = 2 ** 30

/** Whether a recorded pass is the one these members need (same backfills, versions, inputs). */
export function sameMembers(a: PassMember[], b: PassMember[]): boolean {
  const key = (m: PassMember[]) =>
    JSON.stringify([...m].sort((x, y) => x.name.localeCompare(y.name)).map((x) => [x.name, x.version, x.configKey]))
  return key(a) === key(b)
}

/**
 * Begin a pass: the heap's size now, split into chunks of about `chunkPages` pages. Rows on
 * pages beyond it are newer than the walk (or moved there later): the final pass covers them.
 *
 * The snapshot and the size come from ONE statement, the snapshot first (it is the
 * statement's): a transaction that extends the heap after the size is read is one the
 * snapshot does not see, so the final pass looks at what it wrote. (Read the other way round,
 * a row moved onto a new page between the two reads would be on no chunk and look old.)
 * Everything is written in one transaction — `inTransaction` when the caller already has one
 * (a dry run) — so a pass is never recorded without its chunks.
 */
export async function beginPass(
  client: pg.ClientBase,
  members: PassMember[],
  highWater: string,
  inTransaction: boolean,
): Promise<PassState> {
  if (!inTransaction) await client.query('begin')
  try {
    await client.query(`delete from ${CHUNK_TABLE}`)
    await client.query(`delete from ${XID_TABLE}`)
    await client.query(`delete from ${PASS_TABLE}`)
    const { rows } = await client.query<{ snapshot: string; pages: string; rows_per_page: number }>(
      `select pg_current_snapshot()::text as snapshot,
              ${HEAP_PAGES}::text as pages,
              case when c.relpages > 0 and c.reltuples > 0 then c.reltuples / c.relpages else 50 end as rows_per_page
         from pg_class c where c.oid = 'public.api_requests'::regclass`,
    )
    const { snapshot, rows_per_page: rowsPerPage } = rows[0]
    const totalPages = Number(rows[0].pages)
    // About 64 chunks: enough for several runners to share, few enough to claim cheaply.
    const chunkPages = Math.min(16_384, Math.max(8, Math.ceil(totalPages / 64)))
    await client.query(
      `insert into ${PASS_TABLE} (members, high_water, start_snapshot, total_pages, rows_per_page, phase)
       values ($1::jsonb, $2::timestamptz, $3::pg_snapshot, $4, $5, 'walk')`,
      [JSON.stringify(members), highWater, snapshot, totalPages, rowsPerPage],
    )
    await client.query(
      `insert into ${CHUNK_TABLE} (chunk, first_page, end_page, next_page)
       select g, g * $1::bigint, least((g + 1) * $1::bigint, $2::bigint), g * $1::bigint
         from generate_series(0, greatest(ceil($2::float8 / $1::bigint)::int - 1, 0)) g`,
      [chunkPages, totalPages],
    )
    if (!inTransaction) await client.query('commit')
    return { members, highWater, startSnapshot: snapshot, totalPages, rowsPerPage, phase: 'walk' }
  } catch (error) {
    if (!inTransaction) await client.query('rollback').catch(() => {})
    throw error
  }
}

/**
 * Claim the first chunk that is not done and free: unclaimed, ours already, its runner's
 * session gone (the server ends a killed process's session at once, a vanished host's within
 * the keepalive time, see sessions.ts), or its heartbeat older than `leaseSeconds` (a frozen
 * runner). SKIP LOCKED: two runners claiming at once never wait for each other, and never get
 * the same chunk.
 */
export async function claimChunk(client: pg.ClientBase, runner: string, leaseSeconds: number): Promise<Chunk | null> {
  const { rows } = await client.query(
    `update ${CHUNK_TABLE} c set claimed_by = $1, claimed_backend = pg_backend_pid(), heartbeat_at = now()
      where c.chunk = (
        select chunk from ${CHUNK_TABLE} k
         where not done
           and (claimed_by is null or claimed_by = $1 or heartbeat_at < now() - make_interval(secs => $2)
                or not exists (select 1 from pg_catalog.pg_stat_activity a where a.pid = k.claimed_backend))
         order by chunk limit 1 for update of k skip locked)
     returning chunk, first_page::float8, end_page::float8, next_page::float8`,
    [runner, leaseSeconds],
  )
  const r = rows[0]
  return r ? { chunk: r.chunk, firstPage: Number(r.first_page), endPage: Number(r.end_page), nextPage: Number(r.next_page) } : null
}

/**
 * Inside a batch transaction: the chunk's new position (done at its end), and the heartbeat.
 * Only while this runner still holds the claim — a runner that was presumed dead and lost its
 * chunk gets false, and its transaction must roll back.
 */
export async function advanceChunk(
  client: pg.ClientBase,
  chunk: number,
  runner: string,
  nextPage: number,
  done: boolean,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `update ${CHUNK_TABLE} set next_page = $3, done = $4, heartbeat_at = now(), claimed_by = case when $4 then null else claimed_by end
      where chunk = $1 and claimed_by = $2`,
    [chunk, runner, nextPage, done],
  )
  return rowCount === 1
}

/** Give a claimed chunk back, at its recorded position, for any runner to resume (a stop). */
export async function releaseChunk(client: pg.ClientBase, chunk: number, runner: string): Promise<void> {
  await client.query(`update ${CHUNK_TABLE} set claimed_by = null where chunk = $1 and claimed_by = $2`, [chunk, runner])
}

/** Keep a claim alive while a batch is slow to come (e.g. a long read). */
export async function heartbeat(client: pg.ClientBase, runner: string): Promise<void> {
  await client.query(`update ${CHUNK_TABLE} set heartbeat_at = now() where claimed_by = $1 and not done`, [runner])
}

/** Chunks not done yet, and the pages walked so far (for a helper's progress display). */
export async function chunksLeft(client: pg.ClientBase): Promise<{ left: number; pagesDone: number }> {
  const { rows } = await client.query(
    `select count(*) filter (where not done)::int as left, coalesce(sum(next_page - first_page), 0)::float8 as pages_done from ${CHUNK_TABLE}`,
  )
  return { left: rows[0].left, pagesDone: Number(rows[0].pages_done) }
}

export async function setPhase(client: pg.ClientBase, phase: 'catch-up'): Promise<void> {
  await client.query(`update ${PASS_TABLE} set phase = $1`, [phase])
}

export async function dropStateTables(client: pg.ClientBase): Promise<void> {
  await client.query(`drop table if exists ${CHUNK_TABLE}`)
  await client.query(`drop table if exists ${XID_TABLE}`)
  await client.query(`drop table if exists ${PASS_TABLE}`)
}

/**
 * For `db:status`: where the pass stands and who holds which chunk — readable from any machine.
 * Empty when no pass is in progress.
 */
export async function describePass(client: pg.ClientBase): Promise<string[]> {
  const pass = await readPass(client)
  if (!pass) return []
  const { rows } = await client.query<{ done: number; total: number; claimed_by: string | null; chunks: number; beat_s: number | null }>(
    `select count(*) filter (where done) over ()::int as done, count(*) over ()::int as total, claimed_by,
            count(*) over (partition by claimed_by)::int as chunks,
            extract(epoch from now() - max(heartbeat_at) over (partition by claimed_by))::float8 as beat_s
       from ${CHUNK_TABLE}`,
  )
  const done = rows[0]?.done ?? 0
  const total = rows[0]?.total ?? 0
  const claims = new Map<string, string>()
  for (const r of rows) {
    if (r.claimed_by && !claims.has(r.claimed_by))
      claims.set(r.claimed_by, `${r.claimed_by} (heartbeat ${Math.round(r.beat_s ?? 0)} s ago)`)
  }
  const who = claims.size ? `; chunks held by ${[...claims.values()].join(', ')}` : ''
  const phase =
    pass.phase === 'walk' ? `walking, ${done}/${total} chunks of ${pass.totalPages} pages done${who}` : 'final pass over moved rows'
  return [`  row pass (${pass.members.map((m) => m.name).join(', ')}): ${phase}`]
}
