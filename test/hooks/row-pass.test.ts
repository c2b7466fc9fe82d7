/**
 * The row pass (hooks/runner/row-pass/): the per-row backfills in one physical-order walk and
 * one write per row, while the application writes, with several workers, across a kill, and
 * with a second process joining. Each case compares with an uninterrupted, undisturbed run on
 * a copy of the same data, and counts, with a trigger, every UPDATE the hooks made that
 * changed a per-row column: no row may be written twice.
 */
import type pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { openClient } from '../../lib/connection.js'
import { sleep } from '../../lib/retry.js'
import { generateDataset } from './support/dataset.js'
import { hookEnv, insertRows, mappingFile, owned, runQuiet, runStoppedAt, startHookProcess } from './support/fixtures.js'
import { copyDatabase, inDb } from './support/template-databases.js'
import { closeWriteGate, GATE_PATIENT, sessionsOn, waitFor, waitForNoSessions } from '../helpers/drills.js'
import { HOOKS_LOCK_KEY } from '../../hooks/runner/hooks-lock.js'

const MAPPING = JSON.stringify({ 'train-0': 'acc-0', 'train-1': 'acc-1', 'train-2': 'acc-2' })

// Test-only: every UPDATE by a hooks session that changed a backfilled column (sub-task
// linking's included), one row each.
const AUDIT = `
  create schema test_audit;
  create table test_audit.row_writes (request_id uuid not null, at timestamptz not null default clock_timestamp(),
                                       txid bigint not null default txid_current());
  create function test_audit.record() returns trigger language plpgsql as $$
  begin
    if current_setting('application_name') like 'migration hooks%' then
      insert into test_audit.row_writes (request_id) values (new.request_id);
    end if;
    return new;
  end $$;
  create trigger record_row_writes after update on public.api_requests for each row
    when (old.task_tool_invocation is distinct from new.task_tool_invocation
          or old.parent_task_request_id is distinct from new.parent_task_request_id
          or old.conversation_id is distinct from new.conversation_id
          or old.parent_request_id is distinct from new.parent_request_id
          or old.account_id is distinct from new.account_id
          or old.system_hash is distinct from new.system_hash)
    execute function test_audit.record();`

/** Rows the hooks wrote more than once (a per-row column each time). */
async function writtenTwice(url: string): Promise<Array<{ request_id: string; n: number }>> {
  return inDb(
    url,
    async (c) => (await c.query(`select request_id, count(*)::int as n from test_audit.row_writes group by 1 having count(*) > 1`)).rows,
  )
}

let source: string
let reference: Map<string, unknown>
let mapping: string

/** A copy of the data set, with the audit trigger, not yet backfilled. */
async function copy(label: string): Promise<string> {
  return (await copyDatabase(label, source)).url
}

/** Pre-existing rows' backfilled columns, without the `model` the writer changes. */
async function result(url: string): Promise<Map<string, unknown>> {
  const rows = await inDb(url, owned)
  const ids = await inDb(
    url,
    async (c) => new Set((await c.query(`select request_id from api_requests where train_id <> 'live'`)).rows.map((r) => r.request_id)),
  )
  return new Map([...rows].filter(([id]) => ids.has(id)))
}

/**
 * The application meanwhile: every few milliseconds it updates a random pre-existing row's
 * indexed `model` (no HOT update: the new version lands at the end of the heap, behind or
 * beyond the walk) and inserts a new row that would be pending if it were old.
 */
function startApplication(url: string): { stop(): Promise<{ updates: number; inserts: number }> } {
  let running = true
  const counts = { updates: 0, inserts: 0 }
  const done = (async () => {
    const c = await openClient(url, { applicationName: 'test application' })
    try {
      while (running) {
        const moved = await c.query(`update api_requests set model = coalesce(model, 'm') || '.'
          where request_id = (select request_id from api_requests where train_id <> 'live' order by random() limit 1)`)
        counts.updates += moved.rowCount ?? 0
        await c.query(`insert into api_requests (request_id, train_id, timestamp, method, path, headers, body, created_at)
          values (gen_random_uuid(), 'live', now(), 'POST', '/v1/messages', '{}', '{"system": "live prompt"}', now())`)
        counts.inserts++
        await sleep(3)
      }
    } finally {
      await c.end()
    }
  })()
  return {
    async stop() {
      running = false
      await done
      return counts
    },
  }
}

beforeAll(async () => {
  const db = await copyDatabase('rowpass_src')
  await inDb(db.url, async (c) => {
    await insertRows(c, generateDataset(20261201, 120))
    await c.query(AUDIT)
    await c.query('analyze api_requests')
  })
  source = db.name
  mapping = mappingFile(MAPPING)
  const ref = await copy('rowpass_ref')
  const r = await runQuiet(ref, { env: { ACCOUNT_MAPPING_FILE: mapping } })
  expect(r.ok, r.error).toBe(true)
  expect(r.summaries.every((s) => s.outcome === 'done')).toBe(true)
  expect(r.summaries.find((s) => s.name === 'system-hash')!.changed).toBeGreaterThan(100)
  reference = await result(ref)
  expect(await writtenTwice(ref)).toEqual([])
}, 600_000)

describe('the row pass', () => {
  it('writes each row once, in one UPDATE for all its columns', async () => {
    const url = await copy('rowpass_once')
    const r = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: '30' } })
    expect(r.ok, r.error).toBe(true)
    expect(await result(url)).toEqual(reference)
    expect(await writtenTwice(url)).toEqual([])
    // Rows that needed several columns got them in one statement: one audit row per row.
    const multi = await inDb(
      url,
      async (c) => (await c.query(`select count(distinct request_id)::int as n from test_audit.row_writes`)).rows[0].n,
    )
    const changed = r.summaries.reduce((sum, s) => sum + s.changed, 0)
    expect(multi).toBeLessThan(changed)
    // Sub-task linking wrote rows too, in the same versions: moved rows and linked parents.
    expect(r.summaries.find((s) => s.name === 'subtask-links')!.changed).toBeGreaterThan(5)
    // Nothing of the pass is left behind.
    const left = await inDb(
      url,
      async (c) =>
        (await c.query(`select to_regclass('migration_hooks.row_pass') as t, to_regclass('migration_hooks.row_pass_chunks') as c`)).rows[0],
    )
    expect(left).toEqual({ t: null, c: null })
  })

  it("vacuums what it has walked, so that api_requests' heap grows by a fraction of what it grows without", async () => {
    const heapAfterRowPass = async (label: string, percent: string) => {
      const url = await copy(label)
      const pages = () =>
        inDb(url, async (c) => (await c.query(`select pg_relation_size('public.api_requests')::float8 as b`)).rows[0].b as number)
      // Packed pages, as on a table that autovacuum has long settled: the new versions must go somewhere else.
      await inDb(url, (c) => c.query('vacuum public.api_requests'))
      const before = await pages()
      const only = ['task-invocations', 'parent-request-ids', 'account-ids', 'system-hash']
      const r = await runQuiet(url, {
        only,
        env: { ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: '30', HOOKS_RECLAIM_EVERY_PERCENT: percent },
      })
      expect(r.ok, r.error).toBe(true)
      expect(await writtenTwice(url)).toEqual([])
      return (await pages()) / before
    }
    const without = await heapAfterRowPass('rowpass_heap_off', '0')
    const withReclaim = await heapAfterRowPass('rowpass_heap_on', '10')
    // Every row gets a new version: without the vacuum the heap about doubles.
    expect(without).toBeGreaterThan(1.6)
    // (A small table: one round of vacuum is several batches; production tables land near 1 + the percent.)
    expect(withReclaim).toBeLessThan(1.45)
  })

  it('writes at most HOOKS_BATCH_SIZE rows per transaction where pages are denser than the average', async () => {
    const url = await copy('rowpass_pieces')
    // The first half of the heap made fat (a header no rule reads, padded and kept inline):
    // those pages hold two rows each, the rest a dozen, so the table's average density fits
    // neither stretch.
    const densest = await inDb(url, async (c) => {
      await c.query('alter table api_requests alter column headers set storage plain')
      const { rows: half } = await c.query(`select format('(%s,0)', pg_relation_size('api_requests') / 8192 / 2) as tid`)
      await c.query(
        `update api_requests set headers = headers || jsonb_build_object('x-pad', (select string_agg(md5(request_id::text || i), '') from generate_series(1, 90) i))
          where ctid < $1::tid`,
        [half[0].tid],
      )
      await c.query('vacuum full api_requests')
      await c.query('analyze api_requests')
      const { rows } = await c.query(
        `select max(n)::int as densest, (select reltuples / relpages from pg_class where oid = 'api_requests'::regclass)::float8 as average
           from (select (ctid::text::point)[0] as page, count(*) as n from api_requests group by 1) p`,
      )
      return rows[0] as { densest: number; average: number }
    })
    // A size that a page never exceeds, and that ranges planned from the average overshoot.
    const size = densest.densest + 2
    expect(densest.densest).toBeGreaterThan(2 * densest.average)
    const r = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: String(size), HOOKS_BATCH_TARGET_MS: '0' } })
    expect(r.ok, r.error).toBe(true)
    expect(await result(url)).toEqual(reference)
    expect(await writtenTwice(url)).toEqual([])
    const perTxn = await inDb(url, async (c) => (await c.query(`select count(*)::int as n from test_audit.row_writes group by txid`)).rows)
    const rowsPerTxn = perTxn.map((t) => t.n as number)
    expect(Math.max(...rowsPerTxn)).toBeLessThanOrEqual(size)
    // Not one row per transaction either: the pieces are full where the pages allow.
    expect(Math.max(...rowsPerTxn)).toBeGreaterThan(size / 2)
  })

  it.each([1, 2])(
    'with %i worker(s), while the application moves rows and inserts new ones, ends like the undisturbed run',
    async (workers) => {
      const url = await copy(`rowpass_app_${workers}`)
      const app = startApplication(url)
      let r: Awaited<ReturnType<typeof runQuiet>>
      try {
        r = await runQuiet(url, {
          env: { ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: '20', HOOKS_BATCH_DELAY_MS: '15', HOOKS_WORKERS: String(workers) },
        })
      } finally {
        const counts = await app.stop()
        expect(counts.updates).toBeGreaterThan(20)
      }
      expect(r.ok, r.error).toBe(true)
      expect(await result(url)).toEqual(reference)
      expect(await writtenTwice(url)).toEqual([])
      // The application's own rows (created after the backfills' mark) were left to it.
      const live = await inDb(url, async (c) => {
        const { rows } = await c.query(
          `select count(*) filter (where a.created_at > m.mark)::int as after,
                  count(*) filter (where a.created_at > m.mark and a.system_hash is not null)::int as written
             from api_requests a, (select min(high_water) as mark from migration_hooks.backfills) m
            where a.train_id = 'live'`,
        )
        return rows[0]
      })
      expect(live.after).toBeGreaterThan(0)
      expect(live.written).toBe(0)
    },
  )

  it('a runner killed mid-walk with two workers is resumed: every row once, same end state', async () => {
    const url = await copy('rowpass_kill')
    // Held part-way by a write gate: the first write after a chunk is done waits, so the kill
    // lands with the walk unfinished however fast it runs.
    const gate = await closeWriteGate(url, { when: 'exists (select 1 from migration_hooks.row_pass_chunks where done)' })
    const { child, poller } = await startWalking(url, { HOOKS_WORKERS: '2', ...GATE_PATIENT })
    try {
      await gate.waitUntilBlocked()
      process.kill(-child.pid!, 'SIGKILL')
      await child
      const mid = await chunkState(poller)
      expect(mid.done).toBeGreaterThanOrEqual(1)
      expect(mid.done).toBeLessThan(mid.total)
    } finally {
      await gate.remove()
      await poller.end()
    }
    await waitForNoSessions(url)
    const resumed = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: mapping, HOOKS_CLAIM_LEASE_SECONDS: '1' } })
    expect(resumed.ok, resumed.error).toBe(true)
    expect(await result(url)).toEqual(reference)
    expect(await writtenTwice(url)).toEqual([])
  })

  it('a second process does not help an earlier run’s pass while the lock holder is still deciding sub-task links', async () => {
    const url = await copy('rowpass_stale_join')
    // An earlier `--only system-hash` run, stopped part-way: its pass stays recorded, walking.
    const earlier = await runStoppedAt(url, 'exists (select 1 from migration_hooks.row_pass_chunks where done)', {
      only: ['system-hash'],
      env: { HOOKS_BATCH_SIZE: '10' },
    })
    expect(earlier.stopped).toBe(true)
    // Now a whole run holds the hooks lock and is running sub-task linking's steps (it will
    // begin a pass of its own): a second process must not walk the earlier pass meanwhile.
    const holder = await openClient(url)
    try {
      await holder.query('select pg_advisory_lock($1::bigint)', [HOOKS_LOCK_KEY])
      const before = await result(url)
      const writes = async () => inDb(url, async (c) => (await c.query('select count(*)::int as n from test_audit.row_writes')).rows[0].n)
      const written = await writes()
      const helper = await runQuiet(url, { ifBusy: 'join', env: { ACCOUNT_MAPPING_FILE: mapping } })
      expect(helper.busy).toBe(true)
      expect(helper.joined).toBeFalsy()
      expect(await writes()).toBe(written)
      expect(await result(url)).toEqual(before)
    } finally {
      await holder.end()
    }
    const whole = await runQuiet(url, { env: { ACCOUNT_MAPPING_FILE: mapping } })
    expect(whole.ok, whole.error).toBe(true)
    expect(await result(url)).toEqual(reference)
  })

  it('a second process joins the walk, takes over a frozen runner’s chunk, and every row is still written once', async () => {
    const url = await copy('rowpass_join')
    const { child: owner, poller } = await startWalking(url, { HOOKS_BATCH_DELAY_MS: '30', HOOKS_CLAIM_LEASE_SECONDS: '2' })
    try {
      // Freeze the owner (as a stalled VM would be): its claim's heartbeat goes stale.
      await freezeBetweenTransactions(owner.pid!, url)
      const { rows: frozen } = await poller.query<{ chunk: number; claimed_by: string }>(
        `select chunk, claimed_by from migration_hooks.row_pass_chunks where claimed_by is not null and not done`,
      )
      expect(frozen.length, 'the owner held a chunk when it froze').toBeGreaterThan(0)
      // Past the lease (2 s): the owner's heartbeat is stale, so its chunk may be taken over.
      await sleep(2500)
      const helper = runQuiet(url, {
        ifBusy: 'join',
        env: {
          ACCOUNT_MAPPING_FILE: mapping,
          HOOKS_BATCH_SIZE: '10',
          HOOKS_CLAIM_LEASE_SECONDS: '2',
          HOOKS_LOCK_TIMEOUT_MS: '500',
          HOOKS_MAX_RETRIES: '20',
        },
      })
      // The owner resumes only once the helper has taken over a chunk the owner held (or has
      // finished): not after a guess at how long that takes.
      let settled = false
      void helper.finally(() => (settled = true))
      await waitFor(
        async () =>
          settled ||
          (
            await poller.query(
              `select 1 from migration_hooks.row_pass_chunks c join unnest($1::int[], $2::text[]) f(chunk, owner) using (chunk)
                where c.done or c.claimed_by is distinct from f.owner`,
              [frozen.map((f) => f.chunk), frozen.map((f) => f.claimed_by)],
            )
          ).rowCount !== 0,
        { what: 'the helper to take over a chunk of the frozen owner' },
      )
      process.kill(-owner.pid!, 'SIGCONT')
      const helped = await helper
      expect(helped.ok, helped.error).toBe(true)
      expect(helped.joined).toBe(true)
      expect(helped.summaries.reduce((n, s) => n + s.changed, 0)).toBeGreaterThan(0)
      const finished = await owner
      expect(finished.exitCode, String(finished.stdout) + String(finished.stderr)).toBe(0)
    } finally {
      if (owner.exitCode === null) process.kill(-owner.pid!, 'SIGCONT')
      await poller.end()
    }
    expect(await result(url)).toEqual(reference)
    expect(await writtenTwice(url)).toEqual([])
  })
})

/**
 * `hooks/run.ts` on `url` in small batches (plus `settings`), returned once its walk has
 * finished a chunk and holds another; `poller` watches the chunks (the caller ends it).
 */
async function startWalking(url: string, settings: NodeJS.ProcessEnv) {
  const child = startHookProcess(hookEnv({ GM_DBURL: url, ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: '10', ...settings }))
  const poller = await openClient(url)
  try {
    await waitForChunks(poller, (s) => s.done >= 1 && s.claimed >= 1)
  } catch (error) {
    await poller.end()
    throw error
  }
  return { child, poller }
}

/**
 * SIGSTOP the process group `pid` at a moment when none of its sessions is inside a
 * transaction. Frozen inside a batch, the owner would hold its rows' locks until the server's
 * idle_in_transaction_session_timeout ended its session: a different case (the helper waits on
 * row locks, the owner resumes into a closed connection) from the stale heartbeat this test is
 * about. The freeze is retried until it lands between transactions.
 */
async function freezeBetweenTransactions(pid: number, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    process.kill(-pid, 'SIGSTOP')
    // A statement the client had sent still runs to its end: wait for its session to settle.
    await sleep(100)
    const owners = (await sessionsOn(url)).filter((s) => s.application_name.startsWith('migration hooks'))
    // The owner holds the hooks lock on a session of its own: none seen means the filter is wrong.
    if (owners.length === 0) throw new Error('no session of the owner in pg_stat_activity')
    if (owners.every((s) => s.state === 'idle')) return
    process.kill(-pid, 'SIGCONT')
    if (attempt === 50) throw new Error(`the owner was inside a transaction at each of ${attempt} freezes`)
    await sleep(5 + Math.floor(Math.random() * 40))
  }
}

interface ChunkState {
  total: number
  done: number
  claimed: number
}

async function chunkState(c: pg.Client): Promise<ChunkState> {
  const { rows } = await c.query(`select to_regclass('migration_hooks.row_pass_chunks') is not null as ok`)
  if (!rows[0].ok) return { total: 0, done: 0, claimed: 0 }
  const { rows: s } = await c.query(
    `select count(*)::int as total, count(*) filter (where done)::int as done,
            count(*) filter (where claimed_by is not null and not done)::int as claimed
       from migration_hooks.row_pass_chunks`,
  )
  return s[0]
}

async function waitForChunks(c: pg.Client, ready: (s: ChunkState) => boolean): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    if (ready(await chunkState(c))) return
    if (Date.now() > deadline) throw new Error(`the row pass never reached the expected state: ${JSON.stringify(await chunkState(c))}`)
    await sleep(10)
  }
}
