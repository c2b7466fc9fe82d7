/**
 * Drill: the deploy is SIGKILLed (a container killed, an OOM kill) while `db:migrate` runs.
 *
 *  - During a committed migration: nothing is half-applied. The database is exactly "the first
 *    k migrations, nothing else" — schema and rows equal a database on which graphile-migrate
 *    applied just those k — and the re-run completes with the fresh-build catalog.
 *  - During the backfills: at every kill, each backfill's ledger count equals the rows it has
 *    really changed (its batches commit together with its cursor), and the re-run resumes and
 *    ends identical (every column of every row, and the ledger's counts) to an uninterrupted
 *    run on another database loaded from the same fixture.
 *
 * The kill takes the whole process group: tsx, its node child, graphile-migrate and the hooks.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import {
  appliedMigrations,
  backfillPartWay,
  checksums,
  closeWriteGate,
  COMMITTED,
  GATE_PATIENT,
  holdTransaction,
  ledger,
  loadFixture,
  runDb,
  seededRandom,
  sessionsOn,
  startDb,
  stepPartWay,
  waitFor,
  waitForNoSessions,
  type LedgerEntry,
} from '../helpers/drills.js'
import { databaseAfter, expectComplete, expectConsistentPrefix, expectRerunCompletes, FILES, RECORDS, uninterrupted } from './support.js'
import { openClient } from '../../lib/connection.js'
import { ensureLedger } from '../../hooks/runner/ledger.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 900_000

describe('SIGKILL during a committed migration', () => {
  it('leaves the migration it interrupted without a trace, and the re-run completes', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('crash_mig')
    await loadFixture(db.databaseUrl, FIXTURE)
    // The first migration that touches analysis_audit_log (it renames the script chain's
    // `domain` column) has to wait for this lock, half-way through its transaction.
    const blockedIndex = FILES.findIndex((f) => readFileSync(join(COMMITTED, f), 'utf8').includes('analysis_audit_log'))
    expect(blockedIndex).toBeGreaterThan(0)
    const holder = await holdTransaction(db.databaseUrl, ['lock table public.analysis_audit_log in access exclusive mode'])
    const run = startDb(['migrate'], db.env)
    try {
      await waitFor(async () => (await sessionsOn(db.databaseUrl)).find((s) => s.blocked_by.includes(holder.pid)), {
        what: `migration ${FILES[blockedIndex]} to wait for the held lock`,
        process: run,
        timeoutMs: 300_000,
      })
      const killed = await run.kill('SIGKILL')
      expect(killed.signal).toBe('SIGKILL')
    } finally {
      await holder.release()
    }
    // Its backend finishes the statement it was waiting for, finds the client gone and rolls back.
    await waitForNoSessions(db.databaseUrl)

    expect(await expectConsistentPrefix(db.databaseUrl, FIXTURE)).toBe(blockedIndex)
    const column = await withClient(db.databaseUrl, (c) =>
      c.query(
        `select column_name from information_schema.columns where table_name = 'analysis_audit_log' and column_name in ('domain', 'train_id')`,
      ),
    )
    expect(column.rows).toEqual([{ column_name: 'domain' }])

    const again = await runDb(['migrate'], db.env)
    expect(again.exitCode, again.all).toBe(0)
    await expectComplete(db.databaseUrl)
    const reference = await uninterrupted(FIXTURE)
    expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
  })

  it('killed at random moments on an empty database, every stop is a clean prefix of the chain', { timeout: TIMEOUT }, async () => {
    const seed = Number(process.env.DRILL_SEED ?? Math.floor(Math.random() * 1e9))
    const random = seededRandom(seed)
    const reference = await uninterrupted(undefined)
    // Migration 1 takes most of the time on an empty database and the others a few ms each,
    // so a uniformly random moment would nearly always land in migration 1. Instead each
    // crash picks a random point of the chain — after t migrations have committed, plus a
    // random few ms — which lands it between migrations or inside one.
    const stops: string[] = []
    for (let i = 0; i < 5; i++) {
      const db = await createTestDatabases('crash_rand')
      const target = Math.floor(random() * FILES.length)
      // Migration 1 runs for a second or more: spread the moments over it.
      const jitter = Math.round(random() * (target === 0 ? 1500 : 25))
      const poller = await openClient(db.databaseUrl)
      const run = startDb(['migrate'], db.env)
      try {
        await waitFor(
          async () => {
            const exists = (await poller.query(`select to_regclass('graphile_migrate.migrations') is not null as ok`)).rows[0].ok
            const n = exists ? (await poller.query('select count(*)::int as n from graphile_migrate.migrations')).rows[0].n : 0
            return n >= target
          },
          { what: `${target} migrations to commit`, process: run, intervalMs: 5, timeoutMs: 300_000 },
        )
      } finally {
        await poller.end()
      }
      await new Promise((r) => setTimeout(r, jitter)) // the random moment of the crash
      const r = await run.kill('SIGKILL')
      await waitForNoSessions(db.databaseUrl)
      const k = await expectConsistentPrefix(db.databaseUrl)
      stops.push(`after ${target} + ${jitter}ms: ${r.signal ? 'killed' : `exited ${r.exitCode}`} with ${k} applied`)
      const last = await runDb(['migrate'], db.env)
      expect(last.exitCode, last.all).toBe(0)
      await expectComplete(db.databaseUrl)
      expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
    }
    console.log(`random kills (seed ${seed}; DRILL_SEED replays the choices):\n  ${stops.join('\n  ')}`)
  })
})

/** The column each single-column backfill writes, for the accounting check. */
const COLUMN: Record<string, string> = {
  'task-invocations': 'task_tool_invocation',
  'parent-request-ids': 'parent_request_id',
  'system-hash': 'system_hash',
}

async function columnValues(url: string, column: string): Promise<Map<string, string | null>> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(`select request_id::text as id, ${column}::text as v from api_requests order by 1`)
    return new Map(rows.map((r) => [r.id, r.v]))
  })
}

/**
 * Exactly-once accounting at a kill: the rows whose `column` differs from the migrated,
 * not-yet-backfilled state number exactly what the ledger says the backfill changed, and
 * (when `final` is given) each holds its final value.
 */
async function expectLedgerMatchesRows(url: string, name: string, before: string, final?: string) {
  const column = COLUMN[name]!
  const [now, initial, done] = await Promise.all([
    columnValues(url, column),
    columnValues(before, column),
    final ? columnValues(final, column) : undefined,
  ])
  const changed = [...now].filter(([id, v]) => v !== initial.get(id))
  const entry = (await ledger(url)).find((e) => e.name === name)!
  expect(changed.length, `${name}: rows changed vs the ledger's rows_changed`).toBe(entry.rows_changed)
  if (done) for (const [id, v] of changed) expect(v, `${name}: ${id}`).toBe(done.get(id))
  return changed.length
}

describe('SIGKILL during the backfills', () => {
  it('resumes after every kill and ends identical to an uninterrupted run', { timeout: TIMEOUT }, async () => {
    const reference = await uninterrupted(FIXTURE)
    const premigrated = await databaseAfter(FILES.length, FIXTURE)
    const db = await createTestDatabases('crash_hooks')
    await loadFixture(db.databaseUrl, FIXTURE)
    // One row per batch (a fixed size: no time target, which would let the scratch-only steps
    // read more): every step takes several batches, so a gate can hold a later one.
    // GATE_PATIENT: a batch waits at a closed gate instead of giving up after 2 s.
    const patient = { ...db.env, HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_TARGET_MS: '0', ...GATE_PATIENT }

    // Sub-task linking's steps run first; then the per-row backfills run in one pass
    // (task-invocations, parent-request-ids, system-hash and the links share its batches).
    const log: string[] = []
    const killAt = async (point: { name: string; steps?: string[] }) => {
      // The run waits at the gate once the point's backfill is part-way in this run: for the row
      // pass, its next write after a batch it committed; for sub-task linking's steps, its next
      // ledger save after a batch of one of the steps committed. Never a previous kill's stale
      // `running` row.
      const gate = point.steps
        ? await closeWriteGate(db.databaseUrl, { table: 'migration_hooks.backfills', when: stepPartWay(point.name, point.steps) })
        : await closeWriteGate(db.databaseUrl, { when: backfillPartWay(point.name) })
      const run = startDb(['migrate'], patient)
      let hit: LedgerEntry | undefined
      try {
        await gate.waitUntilBlocked(run)
        hit = (await ledger(db.databaseUrl)).find((e: LedgerEntry) => e.name === point.name)
        expect(hit?.state, JSON.stringify(hit)).toBe('running')
        expect(hit?.cursor, JSON.stringify(hit)).not.toBeNull()
        if (point.steps) expect(point.steps, JSON.stringify(hit)).toContain(hit?.step)
      } finally {
        await run.kill('SIGKILL')
        // The killed run's batch still waits at the gate: let it through (it rolls back, its
        // client gone), then wait for its sessions to end.
        await gate.remove()
      }
      await waitForNoSessions(db.databaseUrl)
      log.push(`${hit?.name}/${hit?.step}`)
      if (COLUMN[point.name])
        await expectLedgerMatchesRows(
          db.databaseUrl,
          point.name,
          premigrated,
          point.name === 'task-invocations' ? undefined : reference.databaseUrl,
        )
    }
    // Killed inside a batch transaction, after the batch wrote its rows: the resumed row pass's
    // first batch that writes waits at a gate; the test then holds system-hash's ledger row and
    // opens the gate, so the batch updates its rows and waits to record system-hash's cursor.
    const killInsideBatch = async () => {
      const gate = await closeWriteGate(db.databaseUrl)
      const run = startDb(['migrate'], patient)
      let part: LedgerEntry | undefined
      let cursorWhenHeld: unknown
      try {
        await gate.waitUntilBlocked(run)
        part = (await ledger(db.databaseUrl)).find((e) => e.name === 'system-hash')
        expect(part?.state, JSON.stringify(part)).toBe('running')
        expect(part?.cursor, JSON.stringify(part)).not.toBeNull()
        const holder = await holdTransaction(db.databaseUrl, [
          `select 1 from migration_hooks.backfills where name = 'system-hash' for update`,
        ])
        try {
          cursorWhenHeld = (
            await withClient(db.databaseUrl, (c) => c.query(`select cursor from migration_hooks.backfills where name = 'system-hash'`))
          ).rows[0].cursor
          await gate.open()
          await waitFor(
            async () =>
              (await sessionsOn(db.databaseUrl)).find((s) => s.application_name === 'migration hooks' && s.blocked_by.includes(holder.pid)),
            {
              what: 'a system-hash batch to wait for its ledger row',
              process: run,
              timeoutMs: 120_000,
            },
          )
          await run.kill('SIGKILL')
        } finally {
          await holder.release()
        }
      } finally {
        if (!run.exited()) await run.kill('SIGKILL')
        // Open already; the killed batch rolls back once the holder let it go.
        await gate.remove()
      }
      await waitForNoSessions(db.databaseUrl)
      log.push(`system-hash/${part?.step} inside a batch transaction`)
      const after = (await ledger(db.databaseUrl)).find((e) => e.name === 'system-hash')!
      expect(after.cursor).toEqual(cursorWhenHeld)
      // Every backfill of the pass: the rows it changed are exactly what its ledger counts.
      await expectLedgerMatchesRows(db.databaseUrl, 'system-hash', premigrated, reference.databaseUrl)
      await expectLedgerMatchesRows(db.databaseUrl, 'parent-request-ids', premigrated, reference.databaseUrl)
      await expectLedgerMatchesRows(db.databaseUrl, 'task-invocations', premigrated)
    }
    // Sub-task linking's steps decide first, reading only; its gate is on the ledger, which
    // therefore exists before the first run (as the hooks create it).
    await withClient(db.databaseUrl, (c) => ensureLedger(c))
    await killAt({ name: 'subtask-links', steps: ['scan-conversations', 'scan-calls', 'conversation-texts'] })
    await killAt({ name: 'subtask-links', steps: ['claim-existing', 'match', 'number'] })
    await killAt({ name: 'task-invocations' })
    await killInsideBatch()
    // The migrations all committed before the first kill; only the backfills were interrupted.
    expect(await appliedMigrations(db.databaseUrl)).toEqual(RECORDS)

    console.log(`killed at: ${log.join(', ')}`)

    // The re-run (default settings) resumes and finishes.
    await expectRerunCompletes(db, reference)
  })
})
