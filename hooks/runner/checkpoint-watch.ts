/**
 * Checkpoint starts, seen coming. From a checkpoint's start on, the first change of each page
 * is logged whole (full_page_writes), and a row of api_requests touches pages of 24 indexes:
 * the walk's batches that began as a checkpoint began took about 3.3 times the median
 * transaction in the 1M-row runs, the longest transactions of the adoption. The batch sizer
 * only learns that from such a batch, after its row locks were held that long.
 *
 * So before each batch the walk asks where the server is in its checkpoint cycle, and when a
 * checkpoint is due to start within the next batch (or has started since the last one
 * finished), the sizer is braced: the size is cut to a third once, then grows back by its
 * usual rules as the images thin out. That costs a few smaller batches per checkpoint.
 *
 * Where the next start is, from pg_control_checkpoint() (the last *finished* checkpoint):
 *  - by WAL: the server requests a checkpoint when the WAL since the last redo point fills
 *    max_wal_size ÷ (1 + checkpoint_completion_target), counted in segments — PostgreSQL's
 *    own rule (XLogCheckpointNeeded);
 *  - by time: checkpoint_timeout after the last one started.
 * "Within the next batch" assumes the next batch writes as much WAL, and takes as long, as
 * what passed since the previous reading. One reading per batch, on the writer's session
 * between transactions: a read of the control file, no lock.
 */
import type pg from 'pg'
import { explain } from '../../lib/errors.js'

/** What the sizer is cut to when a checkpoint starts: the first batches cost about 3.3× per row. */
export const CHECKPOINT_BRACE = 1 / 3

export interface CheckpointLimits {
  walSegmentBytes: number
  /** max_wal_size ÷ (1 + checkpoint_completion_target), in whole segments, as PostgreSQL counts. */
  checkpointSegments: number
  timeoutS: number
}

export interface CheckpointReading {
  /** The last finished checkpoint's redo point, as text (identifies the cycle). */
  redo: string
  /** Its position, in bytes. */
  redoPos: number
  /** WAL inserted since that redo point, in bytes. */
  sinceRedoBytes: number
  /** Seconds since that checkpoint started. */
  sinceStartS: number
  /** When the reading was taken (ms, this process's clock). */
  atMs: number
}

/** WAL bytes after `redoPos` at which the next checkpoint is requested (the segment it fills). */
export function walTrigger(limits: CheckpointLimits, redoPos: number): number {
  const redoSegment = Math.floor(redoPos / limits.walSegmentBytes)
  return (redoSegment + limits.checkpointSegments) * limits.walSegmentBytes - redoPos
}

/** Whether a checkpoint starts within the next batch (or already has), judged from two readings. */
export function checkpointStartsSoon(limits: CheckpointLimits, now: CheckpointReading, previous?: CheckpointReading): boolean {
  const sameCycle = previous?.redo === now.redo
  const walPerBatch = sameCycle && previous ? Math.max(0, now.sinceRedoBytes - previous.sinceRedoBytes) : 0
  const secondsPerBatch = previous ? Math.max(0, (now.atMs - previous.atMs) / 1000) : 0
  return (
    now.sinceRedoBytes + walPerBatch >= walTrigger(limits, now.redoPos) ||
    (limits.timeoutS > 0 && now.sinceStartS + secondsPerBatch >= limits.timeoutS)
  )
}

export interface CheckpointWatch {
  /** Before a batch: true once per checkpoint, when it starts within the next batch or has just started. */
  startsSoon(client: pg.ClientBase): Promise<boolean>
}

export const NO_CHECKPOINT_WATCH: CheckpointWatch = { startsSoon: async () => false }

const LIMITS = `
  select pg_catalog.pg_size_bytes(pg_catalog.current_setting('wal_segment_size'))::float8 as segment,
         pg_catalog.pg_size_bytes(pg_catalog.current_setting('max_wal_size'))::float8 as max_wal,
         pg_catalog.current_setting('checkpoint_completion_target')::float8 as target,
         extract(epoch from pg_catalog.current_setting('checkpoint_timeout')::interval)::float8 as timeout`

const READING = `
  select redo_lsn::text as redo,
         (redo_lsn - '0/0'::pg_lsn)::float8 as redo_pos,
         (pg_catalog.pg_current_wal_insert_lsn() - redo_lsn)::float8 as since_redo,
         extract(epoch from pg_catalog.clock_timestamp() - checkpoint_time)::float8 as since_start
    from pg_catalog.pg_control_checkpoint()`

export async function readCheckpointLimits(client: pg.ClientBase): Promise<CheckpointLimits> {
  const { rows } = await client.query(LIMITS)
  const { segment, max_wal: maxWal, target, timeout } = rows[0]
  return {
    walSegmentBytes: segment,
    checkpointSegments: Math.max(1, Math.floor(maxWal / segment / (1 + target))),
    timeoutS: timeout,
  }
}

export async function readCheckpoint(client: pg.ClientBase): Promise<CheckpointReading> {
  const { rows } = await client.query(READING)
  const r = rows[0]
  return { redo: r.redo, redoPos: r.redo_pos, sinceRedoBytes: r.since_redo, sinceStartS: r.since_start, atMs: performance.now() }
}

/**
 * A watch shared by a process's walk workers. A server that does not let this role read the
 * control file (or a standby) gets no watch: it is said once, and batches are sized as before.
 */
export async function checkpointWatch(
  client: pg.ClientBase,
  log: (line: string) => void,
  /** The server's own settings unless given (tests give a cycle of one segment). */
  given?: CheckpointLimits,
): Promise<CheckpointWatch> {
  let limits: CheckpointLimits
  try {
    limits = given ?? (await readCheckpointLimits(client))
    await readCheckpoint(client)
  } catch (error) {
    log(`row pass: cannot read the checkpoint position (${explain(error)}); batches are not cut ahead of checkpoints.`)
    return NO_CHECKPOINT_WATCH
  }
  let previous: CheckpointReading | undefined
  let bracedFor: string | undefined
  return {
    async startsSoon(session) {
      const now = await readCheckpoint(session)
      const soon = checkpointStartsSoon(limits, now, previous)
      previous = now
      // Once per cycle: the sizer then learns the rest from the batches themselves.
      if (!soon || bracedFor === now.redo) return false
      bracedFor = now.redo
      return true
    },
  }
}
