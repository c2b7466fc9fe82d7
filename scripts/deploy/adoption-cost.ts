/**
 * `db:migrate --plan`'s estimate of what the backfills will cost the server, before anything
 * starts: WAL (what standbys replay, the archiver ships, backups keep), the growth of
 * api_requests' heap and indexes, and so the free disk the adoption needs. From the table's
 * own size and a per-byte cost measured by `npm run bench` (README, "What adoption costs your
 * server"); a real server's figures depend on its rows, its indexes and its checkpoints.
 */
import type pg from 'pg'
import { loadSettings } from '../../hooks/runner/settings.js'

/**
 * Measured by `npm run bench` on 2026-12-03 (bodies in TOAST, 24 indexes, full_page_writes on,
 * max_wal_size 1 GB, wal_compression off), all backfills together, one row version per row
 * (sub-task linking's links written by the row pass); rounded up, since an estimate of the
 * free disk needed should err high:
 *  - WAL_PER_BYTE: WAL written per byte of api_requests' heap + indexes before the run. At 1M
 *    rows 26,889 MB for 2,107 MB (12.8; 26,225 MB, 12.5, in a later run): the run wrote 26× max_wal_size, so a checkpoint came
 *    every GB and most of the WAL is the first full image of each page touched after one. At
 *    100k rows, about one checkpoint in the run: 910 MB for 218.5 MB (4.2). A production
 *    table is larger still, so the estimate takes the 1M figure;
 *  - HEAP_GROWTH: the heap's growth, as a share of its size, with the walk's vacuum on
 *    (HOOKS_RECLAIM_EVERY_PERCENT=10: 1,066 → 1,222 MB at 1M, 0.15; 1,066 → 1,298 MB, 0.22, in
 *    the faster run of the same day, whose walk left its vacuum rounds less time) and off (then one new
 *    version per row extends the file as the bench's rewrite floor did: 1,066 → 1,678 MB, 0.57;
 *    0.78 at 100k);
 *  - INDEX_GROWTH: the indexes' growth until a vacuum with index cleanup (1,041 → 1,547 MB at
 *    1M, 0.49).
 */
export const MEASURED = {
  WAL_PER_BYTE: 12.8,
  HEAP_GROWTH_WITH_RECLAIM: 0.25,
  HEAP_GROWTH_WITHOUT_RECLAIM: 0.8,
  INDEX_GROWTH: 0.5,
} as const

export interface CostEstimate {
  walBytes: number
  heapGrowthBytes: number
  indexGrowthBytes: number
  /** WAL the server keeps at least (max_wal_size), with or without archiving. */
  maxWalBytes: number
  archiving: boolean
  freeDiskBytes: number
  /** full_page_writes on and wal_compression off: full-page images go into the WAL as they are. */
  uncompressedPageImages: boolean
}

export async function estimateAdoptionCost(client: pg.ClientBase, env: NodeJS.ProcessEnv = process.env): Promise<CostEstimate> {
  const { rows } = await client.query(`
    select pg_catalog.pg_relation_size('public.api_requests')::float8 as heap,
           pg_catalog.pg_indexes_size('public.api_requests')::float8 as indexes,
           (select setting::float8 * 1024 * 1024 from pg_catalog.pg_settings where name = 'max_wal_size') as max_wal,
           pg_catalog.current_setting('archive_mode') <> 'off' as archiving,
           pg_catalog.current_setting('full_page_writes') = 'on'
             and pg_catalog.current_setting('wal_compression') = 'off' as uncompressed`)
  const { heap, indexes, max_wal: maxWal, archiving, uncompressed } = rows[0]
  const reclaim = loadSettings(env).reclaimEveryPercent > 0
  const walBytes = MEASURED.WAL_PER_BYTE * (heap + indexes)
  const heapGrowthBytes = heap * (reclaim ? MEASURED.HEAP_GROWTH_WITH_RECLAIM : MEASURED.HEAP_GROWTH_WITHOUT_RECLAIM)
  const indexGrowthBytes = indexes * MEASURED.INDEX_GROWTH
  // WAL stays on the primary's disk until a checkpoint has passed it (max_wal_size) and, with
  // archiving, until the archiver has shipped it: if the archiver stalls, all of it.
  const walKept = archiving ? Math.max(maxWal, walBytes) : maxWal
  return {
    walBytes,
    heapGrowthBytes,
    indexGrowthBytes,
    maxWalBytes: maxWal,
    archiving,
    freeDiskBytes: heapGrowthBytes + indexGrowthBytes + walKept,
    uncompressedPageImages: uncompressed,
  }
}

const gb = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${(bytes / 2 ** 20).toFixed(0)} MB`)

export function costEstimateLines(e: CostEstimate): string[] {
  return [
    'What the backfills will cost the server (estimated from this table\'s size and the bench\'s measured per-byte cost; README, "What adoption costs your server"):',
    `  WAL: ~${gb(e.walBytes)} — what a standby replays and the archiver ships`,
    `  api_requests heap: grows ~${gb(e.heapGrowthBytes)}; its indexes: ~${gb(e.indexGrowthBytes)} until autovacuum cleans them`,
    `  free disk needed on the primary: ~${gb(e.freeDiskBytes)} (heap + index growth + ${
      e.archiving ? 'the WAL, if the archiver falls behind' : `max_wal_size, ${gb(e.maxWalBytes)}`
    }). Check the data directory's free space before you start.`,
    ...(e.uncompressedPageImages
      ? [
          `  most of that WAL is the first full image of each page written after a checkpoint: a larger max_wal_size (now ${gb(e.maxWalBytes)}) ` +
            'and checkpoint_timeout for the adoption, and wal_compression = on, make it smaller (each takes a reload).',
        ]
      : []),
  ]
}
