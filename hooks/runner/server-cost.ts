/**
 * What a run cost the server, in the two figures a DBA asks about before saying yes: WAL (what
 * the standby replays, the archiver ships and point-in-time backups keep) and the growth of
 * api_requests' heap (disk that nothing returns until vacuum, or ever, for the file's size).
 *
 * WAL is the server's, not this run's alone: pg_current_wal_lsn() moves for every writer, the
 * proxy included, so a run's summary says so. Read where the role may (a standby or a missing
 * function gives null, and the summary leaves the figure out).
 */
import type pg from 'pg'

export interface CostMark {
  /** pg_current_wal_lsn() as text, or null when it cannot be read. */
  lsn: string | null
  /** api_requests' main fork, bytes (pg_relation_size), or null. */
  heapBytes: number | null
  /** All of api_requests' indexes, bytes (pg_indexes_size), or null. */
  indexBytes: number | null
}

export interface RunCost {
  walBytes: number | null
  heapBefore: number | null
  heapAfter: number | null
  indexesBefore: number | null
  indexesAfter: number | null
}

export async function costMark(client: pg.ClientBase, table = 'public.api_requests'): Promise<CostMark> {
  try {
    const { rows } = await client.query(
      `select case when pg_catalog.pg_is_in_recovery() then null else pg_catalog.pg_current_wal_lsn()::text end as lsn,
              pg_catalog.pg_relation_size(pg_catalog.to_regclass($1))::float8 as heap,
              pg_catalog.pg_indexes_size(pg_catalog.to_regclass($1))::float8 as indexes`,
      [table],
    )
    return { lsn: rows[0].lsn, heapBytes: rows[0].heap, indexBytes: rows[0].indexes }
  } catch {
    return { lsn: null, heapBytes: null, indexBytes: null }
  }
}

export async function costSince(client: pg.ClientBase, mark: CostMark, table = 'public.api_requests'): Promise<RunCost> {
  const now = await costMark(client, table)
  let walBytes: number | null = null
  if (mark.lsn && now.lsn) {
    const { rows } = await client.query('select pg_catalog.pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 as bytes', [now.lsn, mark.lsn])
    walBytes = rows[0].bytes
  }
  return { walBytes, heapBefore: mark.heapBytes, heapAfter: now.heapBytes, indexesBefore: mark.indexBytes, indexesAfter: now.indexBytes }
}

const mb = (bytes: number) => (bytes < 2 ** 20 ? `${Math.round(bytes / 1024)} kB` : `${(bytes / 2 ** 20).toFixed(1)} MB`)

/** "WAL written: 612.0 MB …; api_requests heap 19.5 MB → 21.0 MB (+8 %)", or null with nothing to say. */
export function costLine(cost: RunCost): string | null {
  const parts: string[] = []
  if (cost.walBytes !== null) parts.push(`WAL written meanwhile: ${mb(cost.walBytes)} (the whole server's, the application's included)`)
  if (cost.heapBefore !== null && cost.heapAfter !== null) {
    const growth =
      cost.heapBefore > 0
        ? ` (${cost.heapAfter >= cost.heapBefore ? '+' : ''}${(((cost.heapAfter - cost.heapBefore) / cost.heapBefore) * 100).toFixed(0)} %)`
        : ''
    parts.push(`api_requests heap ${mb(cost.heapBefore)} → ${mb(cost.heapAfter)}${growth}`)
  }
  return parts.length ? `  server: ${parts.join('; ')}` : null
}
