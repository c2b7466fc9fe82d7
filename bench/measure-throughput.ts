/**
 * Backfill throughput at the physical limit (the `adoption` object of the JSON), each on its
 * own fresh copy of the data:
 *
 *  ours         every backfill through the real hook runner (default settings): sub-task
 *               linking's deciding steps, then the row pass (task-invocations,
 *               parent-request-ids, system-hash and the links; account-ids has no mapping file
 *               here and is skipped);
 *  two workers  the same with HOOKS_WORKERS=2;
 *  read floor   one pass in physical order reading what the row pass reads and computing it
 *               (the row pass's own read statement and computation, bench-side), writing
 *               nothing;
 *  rewrite floor one batched pass in physical order that changes one indexed column
 *               (system_hash) of every row once, each batch its own transaction: the least any
 *               backfill of an indexed column must write;
 *  insert cost  the proxy's INSERT + response UPDATE, per row, with the three indexes that
 *               migrations 000017–000019 drop put back, and without them.
 */
import type pg from 'pg'
import { BACKFILLS } from '../hooks/backfills/index.js'
import { computeBatch } from '../hooks/runner/row-pass/compute.js'
import { type Participant, walkRead } from '../hooks/runner/row-pass/sql.js'
import { participantsOf, setupRules } from '../hooks/runner/row-pass/run-pass.js'
import { ensureStateTables, heapPages } from '../hooks/runner/row-pass/state.js'
import type { BackfillSummary } from '../hooks/run.js'
import { openClient } from '../lib/connection.js'
import { backfillMs, maxTxnMs, runHooksChild } from './hooks.js'

export interface RunSide {
  s: number
  maxTxnMs: number
  /** The longest batch transaction per label (a backfill's steps, or `row-pass`). */
  maxTxnMsBy: Record<string, number>
  peakRssMb: number
  /** Per backfill: its summary's duration (the row pass's participants share one). */
  steps: Record<string, number>
}

const ALL = BACKFILLS.map((b) => b.name)

/** Where the time went: the row pass's phases once, then each other backfill's steps. */
export function stepsOf(summaries: BackfillSummary[]): Record<string, number> {
  const steps: Record<string, number> = {}
  const rowPass = summaries.find((s) => BACKFILLS.find((b) => b.name === s.name)?.row && s.phases)
  for (const [phase, s] of Object.entries(rowPass?.phases ?? {})) steps[`row pass ${phase}`] = s
  for (const summary of summaries) {
    const backfill = BACKFILLS.find((b) => b.name === summary.name)
    // A row backfill's own steps (sub-task linking's, before the pass); the pass's phases are above.
    const own = new Set(backfill?.steps.map((step) => step.name))
    for (const [step, s] of Object.entries(summary.phases ?? {})) if (!backfill?.row || own.has(step)) steps[`${summary.name} ${step}`] = s
  }
  return steps
}

export async function measureAllBackfills(url: string, env: NodeJS.ProcessEnv = {}): Promise<RunSide> {
  const run = await runHooksChild(url, undefined, env)
  if (!run.ok) throw new Error(`backfills failed: ${run.error}`)
  return {
    s: backfillMs(run, ALL) / 1000,
    maxTxnMs: maxTxnMs(run, ALL),
    maxTxnMsBy: Object.fromEntries(Object.entries(run.txns).map(([label, t]) => [label, t.maxMs])),
    peakRssMb: run.peakRssMb,
    steps: stepsOf(run.summaries),
  }
}

/** The heap's pages, and about how many rows a batch of `rows` rows spans. */
async function pagesOf(c: pg.ClientBase): Promise<{ pages: number; rowsPerPage: number }> {
  const { rows } = await c.query(
    `select greatest(reltuples / nullif(relpages, 0), 1)::float8 as rpp from pg_class where oid = 'public.api_requests'::regclass`,
  )
  return { pages: await heapPages(c), rowsPerPage: rows[0].rpp }
}

const BATCH_ROWS = 2000

export async function measureReadFloor(url: string): Promise<{ s: number; rows: number; values: number }> {
  // The per-row backfills that read only their own row (account-ids has no mapping here;
  // sub-task linking's rules read the matches its steps decide, which this copy does not have).
  const own = BACKFILLS.filter((b) => b.row && b.steps.length === 0 && b.name !== 'account-ids')
  const participants: Participant[] = own.flatMap((b) => participantsOf(b, null))
  const read = walkRead(participants)
  const c = await openClient(url, { applicationName: 'bench read floor' })
  try {
    await ensureStateTables(c) // the read consults the pass's own-writes table
    await setupRules(c, own)
    await c.query('analyze public.api_requests')
    const { pages, rowsPerPage } = await pagesOf(c)
    const step = Math.max(1, Math.round(BATCH_ROWS / rowsPerPage))
    const started = performance.now()
    let rows = 0
    let values = 0
    for (let p = 0; p < pages; p += step) {
      const result = await c.query(read.sql, [p, Math.min(pages, p + step), ...read.params])
      const computed = computeBatch(participants, result.rows)
      rows += result.rows.length
      values += computed.counts.reduce((n, k) => n + k.planned, 0)
    }
    if (values === 0) throw new Error('read floor: nothing to compute; is the data there?')
    return { s: (performance.now() - started) / 1000, rows, values }
  } finally {
    await c.end().catch(() => {})
  }
}

export async function measureRewriteFloor(url: string): Promise<{ s: number; rows: number }> {
  const c = await openClient(url, { applicationName: 'bench rewrite floor' })
  try {
    await c.query('analyze public.api_requests')
    const { pages, rowsPerPage } = await pagesOf(c)
    const step = Math.max(1, Math.round(BATCH_ROWS / rowsPerPage))
    await c.query(`set synchronous_commit = off`)
    const started = performance.now()
    let rows = 0
    for (let p = 0; p < pages; p += step) {
      const r = await c.query(
        `update public.api_requests set system_hash = md5(request_id::text)
          where ctid >= format('(%s,0)', $1::int)::tid and ctid < format('(%s,0)', $2::int)::tid and system_hash is null`,
        [p, Math.min(pages, p + step)],
      )
      rows += r.rowCount ?? 0
    }
    return { s: (performance.now() - started) / 1000, rows }
  } finally {
    await c.end().catch(() => {})
  }
}

// The three indexes migrations 000017–000019 drop, as legacy 004/008 made them.
const RETIRED = [
  'create index idx_requests_request_id on public.api_requests (request_id)',
  'create index idx_api_requests_response_body_task on public.api_requests using gin (response_body) where response_body is not null',
  `create index idx_api_requests_task_name on public.api_requests ((response_body::text))
     where response_body is not null and response_body::text like '%"name":"Task"%'`,
]

export interface InsertCost {
  /** The proxy's insert + response update, ms per request, with the three indexes. */
  withMs: number
  /** The same without them (the converged schema). */
  withoutMs: number
}

/** `n` proxy-like requests (copies of existing ones), insert then response update, one by one. */
async function proxyWrites(c: pg.ClientBase, n: number): Promise<number> {
  const { rows } = await c.query(
    `select body, response_body from public.api_requests where response_body is not null order by "timestamp" desc limit $1`,
    [n],
  )
  const started = performance.now()
  for (const row of rows) {
    const { rows: inserted } = await c.query(
      `insert into public.api_requests (request_id, train_id, "timestamp", method, path, headers, body, created_at)
       values (gen_random_uuid(), 'bench-insert', now(), 'POST', '/v1/messages', '{}', $1, now()) returning request_id`,
      [row.body],
    )
    await c.query(`update public.api_requests set response_body = $2, response_status = 200 where request_id = $1`, [
      inserted[0].request_id,
      row.response_body,
    ])
  }
  return (performance.now() - started) / rows.length
}

export async function measureInsertCost(url: string, n = 1000): Promise<InsertCost> {
  const c = await openClient(url, { applicationName: 'bench insert cost' })
  try {
    // Alternating rounds, so that a noisy moment of the machine hits both sides alike.
    const withMs: number[] = []
    const withoutMs: number[] = []
    for (let round = 0; round < 2; round++) {
      for (const ddl of RETIRED) await c.query(ddl)
      withMs.push(await proxyWrites(c, n / 2))
      await c.query(
        'drop index public.idx_requests_request_id, public.idx_api_requests_response_body_task, public.idx_api_requests_task_name',
      )
      withoutMs.push(await proxyWrites(c, n / 2))
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    return { withMs: mean(withMs), withoutMs: mean(withoutMs) }
  } finally {
    await c.end().catch(() => {})
  }
}
