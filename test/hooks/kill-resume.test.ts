/**
 * SIGKILL at arbitrary points, then resume: the database must end exactly as an uninterrupted
 * run leaves a copy of it — every column of every row, and the ledger's counts.
 *
 * The hook process is `hooks/run.ts`, as graphile-migrate starts it, in a process group of
 * its own so that the kill reaches every child. Small batches, and a write gate that holds
 * each run once it is part-way through the kill point's backfill (or step), make every kill
 * land mid-way, including in the staged sub-task steps — however fast or slow the machine.
 */
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { ensureLedger } from '../../hooks/runner/ledger.js'
import { copyDatabase, inDb } from './support/template-databases.js'
import { generateDataset } from './support/dataset.js'
import { fullSnapshot, hookEnv, insertRows, mappingFile, runQuiet, startHookProcess } from './support/fixtures.js'
import {
  backfillPartWay,
  closeWriteGate,
  GATE_PATIENT,
  startScript,
  stepPartWay,
  waitForNoSessions,
  type WriteGate,
} from '../helpers/drills.js'

interface LedgerView {
  name: string
  state: string
  step: string | null
  cursor: unknown
}

async function ledger(c: pg.Client): Promise<LedgerView[]> {
  const { rows } = await c.query(`select to_regclass('migration_hooks.backfills') is not null as ok`)
  if (!rows[0].ok) return []
  return (await c.query(`select name, state, step, cursor from migration_hooks.backfills`)).rows
}

/**
 * Kill points: a backfill (and step) with a cursor, i.e. genuinely part-way through, in the
 * order a run meets them. Sub-task linking's steps decide first (reading only; gated on their
 * ledger saves); then the row pass writes every per-row backfill's columns and the links
 * (gated on its writes to api_requests).
 */
const KILL_POINTS: Array<{ name: string; steps?: string[]; gate: 'ledger' | 'rows' }> = [
  { name: 'subtask-links', steps: ['scan-conversations'], gate: 'ledger' },
  { name: 'subtask-links', steps: ['scan-calls', 'conversation-texts'], gate: 'ledger' },
  { name: 'subtask-links', steps: ['match'], gate: 'ledger' },
  { name: 'task-invocations', gate: 'rows' },
  { name: 'parent-request-ids', gate: 'rows' },
  { name: 'system-hash', gate: 'rows' },
  { name: 'subtask-links', steps: ['walk'], gate: 'rows' },
]

describe('SIGKILL and resume', () => {
  it('ends identical to an uninterrupted run on a copy', async () => {
    const a = await copyDatabase('kill_a')
    await inDb(a.url, (c) => insertRows(c, generateDataset(20250201, 40)))
    const b = await copyDatabase('kill_b', a.name)
    const mapping = mappingFile(JSON.stringify({ 'train-0': 'acc-0', 'train-1': 'acc-1', 'train-2': 'acc-2' }))

    // The reference: one uninterrupted run, default batch size, in-process.
    const reference = await runQuiet(b.url, { env: { ACCOUNT_MAPPING_FILE: mapping } })
    expect(reference.ok, reference.error).toBe(true)
    expect(reference.summaries.every((s) => s.outcome === 'done')).toBe(true)

    // GATE_PATIENT: a batch waits at the gate for as long as the test keeps it closed.
    const env = hookEnv({ GM_DBURL: a.url, ACCOUNT_MAPPING_FILE: mapping, HOOKS_BATCH_SIZE: '7', ...GATE_PATIENT })
    const killedAt: string[] = []
    // The first kill point's gate is on the ledger: it exists before the first run, as the
    // hooks create it.
    await inDb(a.url, (c) => ensureLedger(c))
    for (const point of KILL_POINTS) {
      // The run waits at the gate once the point's backfill is part-way in this run: for a
      // sub-task step, its next ledger save after a batch of that step committed; for the row
      // pass, its next write after a batch it committed (not a killed run's stale `running` row).
      const gate: WriteGate =
        point.gate === 'ledger'
          ? await closeWriteGate(a.url, { table: 'migration_hooks.backfills', when: stepPartWay(point.name, point.steps ?? []) })
          : await closeWriteGate(a.url, { when: backfillPartWay(point.name, point.steps) })
      const child = startScript('hooks/run.ts', [], env)
      try {
        // Fails if the run ends first: every kill point must really be hit.
        await gate.waitUntilBlocked(child)
        const hit = (await inDb(a.url, ledger)).find((e) => e.name === point.name)
        expect(hit?.state, JSON.stringify(hit)).toBe('running')
        expect(hit?.cursor, JSON.stringify(hit)).not.toBeNull()
        if (point.steps) expect(point.steps, JSON.stringify(hit)).toContain(hit?.step)
        killedAt.push(`${point.name}/${hit?.step}`)
      } finally {
        await child.kill('SIGKILL')
        // The killed run's batch still waits at the gate: let it through (its client is gone, so
        // it rolls back), then wait until its sessions (and the hooks lock) are gone.
        await gate.remove()
      }
      await waitForNoSessions(a.url)
    }
    console.log(`SIGKILLed at: ${killedAt.join(', ')}`)
    expect(killedAt.length, `killed at: ${killedAt.join(', ')}`).toBe(KILL_POINTS.length)

    // Let the last run finish (and pick up whatever the kills left), as `db:migrate` would.
    const final = await startHookProcess(env)
    expect(final.exitCode, String(final.stderr)).toBe(0)

    expect(await inDb(a.url, fullSnapshot)).toEqual(await inDb(b.url, fullSnapshot))
    const counts = (url: string) =>
      inDb(
        url,
        async (c) =>
          (
            await c.query(
              `select name, state, version, rows_changed, rows_skipped, note, cursor, step from migration_hooks.backfills order by name`,
            )
          ).rows,
      )
    expect(await counts(a.url)).toEqual(await counts(b.url))
    // And the reference run did real work of every kind, so the comparison means something.
    const changed = Object.fromEntries(reference.summaries.map((s) => [s.name, s.changed]))
    for (const name of ['task-invocations', 'subtask-links', 'parent-request-ids', 'account-ids', 'system-hash'])
      expect(changed[name]).toBeGreaterThan(0)
  })
})
