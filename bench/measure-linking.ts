/**
 * Sub-task and parent linking: our backfills (task-invocations → subtask-links →
 * parent-request-ids, through the hook runner) against the legacy set-based SQL of 003, 007
 * and 008 (bench/legacy/*.sql, re-written from the spec for measurement only), each on its own
 * identical copy of the data. Both start from the same state: task_tool_invocation,
 * parent_task_request_id and parent_request_id NULL everywhere.
 *
 * Reported per side: seconds (ours: the three backfills' own durations, without the final
 * ANALYZE; legacy: the three scripts), the longest transaction (legacy: each script is one
 * transaction), and what each linked, so that speed is not bought with missing work.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { backfillMs, maxTxnMs, runHooksChild, type HookRun } from './hooks.js'
import { PROJECT_ROOT, withClient } from './server.js'
import { openClient } from '../lib/connection.js'

export const LINKING_BACKFILLS = ['task-invocations', 'subtask-links', 'parent-request-ids']
const LEGACY_SCRIPTS = ['003-subtask-linking.sql', '007-parent-request-id.sql', '008-subtask-branches.sql']

export interface LinkOutcome {
  /** Rows with parent_task_request_id set. */
  subtaskRows: number
  /** Sub-task conversations linked (distinct original conversations, via linked rows' branches). */
  subtaskBranches: number
  /** Rows with parent_request_id set. */
  parentLinks: number
  /** Task calls carrying linked_conversation_id. */
  linkedCalls: number
}

export interface LinkingSide {
  s: number
  maxTxnMs: number
  steps: Record<string, number>
  outcome: LinkOutcome
  /** Legacy only: the script stopped by the time limit (then `s` is a lower bound). */
  timedOut?: string
  /** Ours only: where the time went, and the hook runner's peak RSS. */
  topStatements?: HookRun['topStatements']
  peakRssMb?: number
}

async function outcome(url: string): Promise<LinkOutcome> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(`select
        (select count(*)::int from api_requests where parent_task_request_id is not null) as subtask_rows,
        (select count(distinct (conversation_id, branch_id))::int from api_requests where parent_task_request_id is not null) as subtask_branches,
        (select count(*)::int from api_requests where parent_request_id is not null) as parent_links,
        (select count(*)::int from api_requests a, jsonb_array_elements(a.task_tool_invocation) e
          where jsonb_typeof(a.task_tool_invocation) = 'array' and e ? 'linked_conversation_id') as linked_calls`)
    const r = rows[0]
    return { subtaskRows: r.subtask_rows, subtaskBranches: r.subtask_branches, parentLinks: r.parent_links, linkedCalls: r.linked_calls }
  })
}

export async function measureOursLinking(url: string): Promise<LinkingSide> {
  const run = await runHooksChild(url, LINKING_BACKFILLS)
  if (!run.ok) throw new Error(`linking backfills failed: ${run.error}`)
  const steps = Object.fromEntries(run.summaries.map((s) => [s.name, s.durationMs / 1000]))
  return {
    s: backfillMs(run, LINKING_BACKFILLS) / 1000,
    maxTxnMs: maxTxnMs(run, LINKING_BACKFILLS),
    steps,
    outcome: await outcome(url),
    topStatements: run.topStatements,
    peakRssMb: run.peakRssMb,
  }
}

/** Run the legacy scripts; `timeoutMs` bounds each one (statement_timeout) so a run always ends. */
export async function measureLegacyLinking(url: string, timeoutMs: number): Promise<LinkingSide> {
  const client = await openClient(url, { applicationName: 'bench legacy linking' })
  const steps: Record<string, number> = {}
  let timedOut: string | undefined
  try {
    await client.query(`set statement_timeout = ${Math.round(timeoutMs)}`)
    for (const script of LEGACY_SCRIPTS) {
      const sql = readFileSync(join(PROJECT_ROOT, 'bench', 'legacy', script), 'utf8')
      const started = performance.now()
      try {
        await client.query(sql)
      } catch (error) {
        if ((error as { code?: string }).code !== '57014') throw error
        // statement_timeout: the script's transaction is rolled back; its time is a lower bound.
        timedOut = script
      }
      steps[script] = (performance.now() - started) / 1000
      if (timedOut) break
    }
  } finally {
    await client.end().catch(() => {})
  }
  const s = Object.values(steps).reduce((a, b) => a + b, 0)
  return { s, maxTxnMs: Math.max(...Object.values(steps)) * 1000, steps, outcome: await outcome(url), timedOut }
}
