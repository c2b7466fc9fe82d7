/**
 * What the throttle reads about the database's health: one query per kind of signal, each on
 * the health session, outside any transaction, and each cheap (catalog views over shared
 * memory, one directory listing). A signal this role may not read is reported as such, never
 * as healthy or unhealthy: the throttle says so once and stops asking.
 *
 *  - standby: every physical standby streaming from this server (pg_stat_replication): bytes
 *    between the primary's current WAL position and what the standby has replayed, and
 *    replay_lag (confirmed by the runner's own earlier readings of the WAL position). Logical walsenders (CDC consumers) are left to the slot check: their lag is
 *    the consumer's business, the WAL they keep is ours. A standby that disconnects leaves
 *    pg_stat_replication, so it holds nothing here; a slot it leaves behind is the slot check's.
 *    Without pg_read_all_stats (pg_monitor has it) every column but the pid is NULL.
 *  - slot: WAL each replication slot, active or not, keeps on this server's disk
 *    (pg_replication_slots, readable by every role).
 *  - archiver: segments waiting for archive_command (.ready files, pg_ls_archive_statusdir():
 *    superuser or pg_monitor). Not asked when archive_mode is off.
 *  - autovacuum: an autovacuum worker on public.api_requests (pg_stat_progress_vacuum; its
 *    relid is NULL to roles without pg_read_all_stats).
 */
import type pg from 'pg'

// "The primary's current WAL position" is its insert position: the batches commit with
// synchronous_commit off, so pg_current_wal_lsn() (what is written out) trails what they
// wrote by up to wal_writer_delay, and a check right after a batch would not see that batch.

export type SignalKind = 'standby' | 'slot' | 'archiver' | 'autovacuum'

export interface Breach {
  kind: SignalKind
  /** Which standby, slot or vacuum this is: a wait's cap and its exemption are per key. */
  key: string
  /** "standby 127.0.0.1 (application_name walreceiver) is 212 MB behind (limit 64 MB)" */
  text: string
}

export interface Unreadable {
  kind: SignalKind
  why: string
}

export interface Reading {
  breaches: Breach[]
  /**
   * Some value is past half its limit: the next batches may cross it, so a healthy reading
   * is not trusted for HOOKS_HEALTH_CHECK_MS but read again before the next batch.
   */
  near: boolean
  unreadable: Unreadable[]
}

/** The limits a reading is compared with (HealthLimits' numbers; 0 turns a check off). */
export interface SignalLimits {
  maxReplicaLagSeconds: number
  maxReplicaLagMb: number
  maxSlotRetainedMb: number
  maxArchiveBacklogSegments: number
  maxAutovacuumWaitSeconds: number
}

const MB = 1024 * 1024
// Whole MB from 10 MB on; below, two decimals, so that a reading just over a small limit does not print as equal to it.
const mb = (bytes: number) => (bytes >= 10 * MB ? String(Math.round(bytes / MB)) : (bytes / MB).toFixed(2))
const secondsText = (s: number) => (s >= 10 ? String(Math.round(s)) : s.toFixed(1))

const NEEDS_MONITOR = 'needs the pg_monitor role (or pg_read_all_stats)'

/** The checks that are on, given the limits (a kind whose limits are all 0 is never asked). */
export function activeKinds(limits: SignalLimits): SignalKind[] {
  const kinds: SignalKind[] = []
  if (limits.maxReplicaLagMb > 0 || limits.maxReplicaLagSeconds > 0) kinds.push('standby')
  if (limits.maxSlotRetainedMb > 0) kinds.push('slot')
  if (limits.maxArchiveBacklogSegments > 0) kinds.push('archiver')
  if (limits.maxAutovacuumWaitSeconds > 0) kinds.push('autovacuum')
  return kinds
}

interface StandbyRow {
  current: string
  pid: number | null
  application_name: string | null
  addr: string | null
  state: string | null
  behind: number | null
  lag_s: number | null
  behind_past: boolean | null
  behind_half: boolean | null
}

/**
 * The primary's WAL position some time ago, from the throttle's own earlier readings: a
 * standby that has not replayed it yet is at least that many seconds behind.
 */
export interface PastPosition {
  lsn: string
  ageSeconds: number
}

export interface StandbyHistory {
  /** The newest earlier reading at least HOOKS_MAX_REPLICA_LAG_SECONDS old, and at least half that old. */
  past: PastPosition | null
  half: PastPosition | null
  /** Told the primary's current position at this reading. */
  record(lsn: string): void
}

async function standbys(
  client: pg.ClientBase,
  limits: SignalLimits,
  near: () => void,
  history: StandbyHistory,
): Promise<Breach[] | Unreadable> {
  const { rows } = await client.query<StandbyRow>(
    `select w.lsn::text as current, r.pid, r.application_name, r.addr, r.state,
            pg_catalog.pg_wal_lsn_diff(w.lsn, r.replay_lsn)::float8 as behind,
            extract(epoch from r.replay_lag)::float8 as lag_s,
            r.replay_lsn < $1::pg_lsn as behind_past, r.replay_lsn < $2::pg_lsn as behind_half
       from (select pg_catalog.pg_current_wal_insert_lsn() as lsn) w
       left join lateral (
         select r.pid, r.application_name, host(r.client_addr) as addr, r.state, r.replay_lsn, r.replay_lag
           from pg_catalog.pg_stat_replication r
           left join pg_catalog.pg_replication_slots s on s.active_pid = r.pid
          where s.slot_type is distinct from 'logical') r on true`,
    [history.past?.lsn ?? null, history.half?.lsn ?? null],
  )
  history.record(rows[0].current)
  const senders = rows.filter((r) => r.pid !== null)
  // Only the pid is visible without pg_read_all_stats: a standby is there, its lag is not.
  if (senders.some((r) => r.state === null)) return { kind: 'standby', why: `pg_stat_replication's positions are hidden: ${NEEDS_MONITOR}` }
  const breaches: Breach[] = []
  // A base backup's walsender ('backup') and one still starting are no standby to wait for.
  for (const r of senders.filter((s) => s.state === 'streaming' || s.state === 'catchup')) {
    const who = `standby ${r.addr ?? 'local'} (application_name ${r.application_name || '-'})`
    const key = `standby:${r.pid}`
    const behind = r.behind ?? 0
    // Seconds behind: replay_lag, but only while the standby has not replayed what this
    // primary had written that long ago (the runner's own earlier readings). replay_lag
    // alone keeps its last measurement after the standby caught up — after a pause, the
    // pause's length — until the standby's next status message, up to 10 s later.
    const seconds = limits.maxReplicaLagSeconds
    const lagging = seconds > 0 && r.behind_past === true
    if ((limits.maxReplicaLagMb > 0 && behind > (limits.maxReplicaLagMb * MB) / 2) || (seconds > 0 && r.behind_half === true)) near()
    if (limits.maxReplicaLagMb > 0 && behind > limits.maxReplicaLagMb * MB) {
      breaches.push({ kind: 'standby', key, text: `${who} is ${mb(behind)} MB behind (limit ${limits.maxReplicaLagMb} MB)` })
    } else if (lagging) {
      const lag = Math.max(r.lag_s ?? 0, history.past!.ageSeconds)
      breaches.push({ kind: 'standby', key, text: `${who} is ${secondsText(lag)} s behind (limit ${seconds} s)` })
    }
  }
  return breaches
}

async function slots(client: pg.ClientBase, limits: SignalLimits, near: () => void): Promise<Breach[]> {
  const { rows } = await client.query<{ slot_name: string; slot_type: string; active: boolean; retained: number }>(
    `select slot_name, slot_type, active,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), restart_lsn)::float8 as retained
       from pg_catalog.pg_replication_slots
      where restart_lsn is not null and wal_status is distinct from 'lost'`,
  )
  if (rows.some((r) => r.retained > (limits.maxSlotRetainedMb * MB) / 2)) near()
  return rows
    .filter((r) => r.retained > limits.maxSlotRetainedMb * MB)
    .map((r) => ({
      kind: 'slot' as const,
      key: `slot:${r.slot_name}`,
      text:
        `${r.active ? '' : 'inactive '}${r.slot_type} replication slot ${r.slot_name} retains ${mb(r.retained)} MB of WAL ` +
        `(limit ${limits.maxSlotRetainedMb} MB)`,
    }))
}

async function archiver(client: pg.ClientBase, limits: SignalLimits, near: () => void): Promise<Breach[]> {
  const { rows: mode } = await client.query<{ on: boolean }>(`select current_setting('archive_mode') <> 'off' as on`)
  if (!mode[0].on) return []
  const { rows } = await client.query<{ ready: number }>(
    `select count(*)::int as ready from pg_catalog.pg_ls_archive_statusdir() where name like '%.ready'`,
  )
  const ready = rows[0].ready
  if (ready > limits.maxArchiveBacklogSegments / 2) near()
  if (ready <= limits.maxArchiveBacklogSegments) return []
  return [
    {
      kind: 'archiver',
      key: 'archiver',
      text: `${ready} WAL segments wait for the archiver (limit ${limits.maxArchiveBacklogSegments})`,
    },
  ]
}

async function autovacuum(client: pg.ClientBase): Promise<Breach[] | Unreadable> {
  const { rows } = await client.query<{ pid: number; relid: string | null; phase: string | null; auto: boolean }>(
    `select p.pid, p.relid::oid::text as relid, p.phase, coalesce(a.backend_type = 'autovacuum worker', false) as auto
       from pg_catalog.pg_stat_progress_vacuum p
       left join pg_catalog.pg_stat_activity a on a.pid = p.pid
      where p.datname = current_database()`,
  )
  if (rows.some((r) => r.relid === null)) {
    return { kind: 'autovacuum', why: `pg_stat_progress_vacuum's tables are hidden: ${NEEDS_MONITOR}` }
  }
  const { rows: table } = await client.query<{ oid: string | null }>(`select to_regclass('public.api_requests')::oid::text as oid`)
  return rows
    .filter((r) => r.auto && r.relid === table[0].oid)
    .map((r) => ({
      kind: 'autovacuum' as const,
      key: `autovacuum:${r.pid}`,
      text: `autovacuum is working on api_requests (pid ${r.pid}, ${r.phase})`,
    }))
}

/** SQLSTATE class 42 (insufficient_privilege 42501 among them) and undefined objects: the role cannot read it. */
function unreadableError(error: unknown): string | null {
  const e = error as { code?: string; message?: string }
  if (typeof e.code !== 'string' || e.code.length !== 5) return null // no server error: the connection
  return e.code === '42501' ? `${e.message}: ${NEEDS_MONITOR}` : (e.message ?? e.code)
}

/** Read every signal of `kinds`; a signal this role may not read comes back as unreadable. */
export async function readSignals(
  client: pg.ClientBase,
  limits: SignalLimits,
  kinds: readonly SignalKind[],
  history: StandbyHistory,
): Promise<Reading> {
  const reading: Reading = { breaches: [], unreadable: [], near: false }
  const near = () => {
    reading.near = true
  }
  const read: Record<SignalKind, () => Promise<Breach[] | Unreadable>> = {
    standby: () => standbys(client, limits, near, history),
    slot: () => slots(client, limits, near),
    archiver: () => archiver(client, limits, near),
    autovacuum: () => autovacuum(client),
  }
  for (const kind of kinds) {
    try {
      const result = await read[kind]()
      if (Array.isArray(result)) reading.breaches.push(...result)
      else reading.unreadable.push(result)
    } catch (error) {
      const why = unreadableError(error)
      if (why === null) throw error
      reading.unreadable.push({ kind, why })
    }
  }
  return reading
}
