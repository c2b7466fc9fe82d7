/**
 * The walk's checkpoint watch (hooks/runner/checkpoint-watch.ts): where the next checkpoint
 * starts, by PostgreSQL's own rule, judged from readings of a real server's control file; the
 * sizer braced once per checkpoint cycle.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { batchSizer } from '../../hooks/runner/batch-sizer.js'
import {
  CHECKPOINT_BRACE,
  type CheckpointLimits,
  type CheckpointReading,
  checkpointStartsSoon,
  checkpointWatch,
  readCheckpoint,
  readCheckpointLimits,
  walTrigger,
} from '../../hooks/runner/checkpoint-watch.js'
import { rootUrl } from '../helpers/databases.js'

const MB = 1024 * 1024
const limits: CheckpointLimits = { walSegmentBytes: 16 * MB, checkpointSegments: 8, timeoutS: 300 }
const reading = (over: Partial<CheckpointReading>): CheckpointReading => ({
  redo: '0/31000000',
  redoPos: 49 * MB,
  sinceRedoBytes: 0,
  sinceStartS: 0,
  atMs: 0,
  ...over,
})

describe('where the next checkpoint starts', () => {
  it('is requested when the WAL since the redo point fills the segments PostgreSQL counts', () => {
    // Redo 1 MB into segment 3; eight segments later is the end of segment 10: 176 MB − 49 MB.
    expect(walTrigger(limits, 49 * MB)).toBe(127 * MB)
    expect(walTrigger(limits, 48 * MB)).toBe(128 * MB)
  })

  it('is soon when the next batch, writing what the last one wrote, reaches it, or it has passed', () => {
    const before = reading({ sinceRedoBytes: 100 * MB, atMs: 1000 })
    expect(checkpointStartsSoon(limits, before)).toBe(false)
    // 20 MB since the last reading: the next 20 MB cross 127 MB.
    expect(checkpointStartsSoon(limits, reading({ sinceRedoBytes: 120 * MB, atMs: 1100 }), before)).toBe(true)
    // 5 MB per batch: 105 + 5 is still short of it.
    expect(checkpointStartsSoon(limits, reading({ sinceRedoBytes: 105 * MB, atMs: 1100 }), before)).toBe(false)
    // Past it, whatever came before (the checkpoint is running; the control file shows the last finished one).
    expect(checkpointStartsSoon(limits, reading({ sinceRedoBytes: 300 * MB }))).toBe(true)
    // A new cycle: the last reading's WAL belongs to the previous redo point and says nothing.
    const other = reading({ redo: '0/30000000', redoPos: 48 * MB, sinceRedoBytes: 10 * MB, atMs: 1000 })
    expect(checkpointStartsSoon(limits, reading({ sinceRedoBytes: 120 * MB, atMs: 1100 }), other)).toBe(false)
  })

  it('is soon by time when checkpoint_timeout runs out within the next batch', () => {
    const before = reading({ sinceStartS: 299.5, atMs: 1000 })
    expect(checkpointStartsSoon(limits, reading({ sinceStartS: 299.8, atMs: 1300 }), before)).toBe(true)
    expect(checkpointStartsSoon(limits, reading({ sinceStartS: 290, atMs: 1300 }), reading({ sinceStartS: 289.7, atMs: 1000 }))).toBe(false)
    expect(checkpointStartsSoon({ ...limits, timeoutS: 0 }, reading({ sinceStartS: 10_000 }))).toBe(false)
  })
})

describe('the batch sizer braced for a checkpoint', () => {
  it('cuts the size at once, then learns from the small batches instead of ignoring them', () => {
    const sizer = batchSizer(400, 60)
    sizer.observe(60, 100)
    sizer.observe(40, 100) // → 125
    sizer.brace(CHECKPOINT_BRACE)
    expect(sizer.size()).toBe(42)
    sizer.observe(90, 42) // the images make even the small batch slow: it shrinks further
    expect(sizer.size()).toBe(28)
    const fixed = batchSizer(400, 0)
    fixed.brace(CHECKPOINT_BRACE)
    expect(fixed.size()).toBe(400)
  })
})

describe('on a real server', () => {
  let client: pg.Client
  beforeAll(async () => {
    client = new pg.Client({ connectionString: rootUrl() })
    await client.connect()
  })
  afterAll(() => client.end())

  it("reads the server's own limits and its position in the cycle", async () => {
    const got = await readCheckpointLimits(client)
    const { rows } = await client.query(`
      select pg_size_bytes(current_setting('wal_segment_size'))::float8 as seg,
             pg_size_bytes(current_setting('max_wal_size'))::float8 as max_wal,
             current_setting('checkpoint_completion_target')::float8 as cct`)
    expect(got.walSegmentBytes).toBe(rows[0].seg)
    expect(got.checkpointSegments).toBe(Math.floor(rows[0].max_wal / rows[0].seg / (1 + rows[0].cct)))
    await client.query('checkpoint')
    const after = await readCheckpoint(client)
    await client.query('select pg_switch_wal()')
    const switched = await readCheckpoint(client)
    // Unless another test's checkpoint came between, the same cycle, a segment further on.
    if (switched.redo === after.redo) expect(switched.sinceRedoBytes - after.sinceRedoBytes).toBeGreaterThan(0)
    await client.query('checkpoint')
    expect((await readCheckpoint(client)).redo).not.toBe(after.redo)
  })

  it('says soon once per cycle: when the WAL crosses the start, and again after the next checkpoint', async () => {
    // A cycle of one segment: the next checkpoint is due where the redo point's segment ends.
    const oneSegment = { walSegmentBytes: (await readCheckpointLimits(client)).walSegmentBytes, checkpointSegments: 1, timeoutS: 0 }
    const lines: string[] = []
    // Another test file may checkpoint the shared server meanwhile: the sequence is retried then.
    const redoNow = async () => (await readCheckpoint(client)).redo
    for (let attempt = 1; ; attempt++) {
      // The redo point at the start of a fresh segment: a whole segment before the start.
      await client.query('select pg_switch_wal()')
      await client.query('checkpoint')
      const redo = await redoNow()
      const watch = await checkpointWatch(client, (l) => lines.push(l), oneSegment)
      const answers = [await watch.startsSoon(client)]
      await client.query('select pg_switch_wal()') // into the next segment: past the start
      answers.push(await watch.startsSoon(client), await watch.startsSoon(client))
      const firstCycle = (await redoNow()) === redo
      await client.query('checkpoint') // a new cycle, its start a segment away
      const nextRedo = await redoNow()
      answers.push(await watch.startsSoon(client))
      await client.query('select pg_switch_wal()')
      answers.push(await watch.startsSoon(client))
      const stillOurs = firstCycle && (await redoNow()) === nextRedo && nextRedo !== redo
      if (!stillOurs && attempt < 3) continue
      expect(answers).toEqual([false, true, false, false, true])
      expect(lines).toEqual([])
      return
    }
  })

  it('does without, saying so once, where the position cannot be read', async () => {
    // Any failure to read it (a role the control file's function was revoked from, a
    // standby, a session gone) leaves the batches sized as before, with one line said.
    const gone = new pg.Client({ connectionString: rootUrl() })
    await gone.connect()
    await gone.end()
    const lines: string[] = []
    const watch = await checkpointWatch(gone, (l) => lines.push(l))
    expect(await watch.startsSoon(gone)).toBe(false)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^row pass: cannot read the checkpoint position \(.+\); batches are not cut ahead of checkpoints\.$/)
  })
})
