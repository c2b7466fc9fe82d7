/**
 * Shared by the drills: reference databases to compare an interrupted database with, and the
 * "nothing half-applied" / "fully migrated" assertions.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import {
  appliedMigrations,
  checksums,
  COMMITTED,
  committedFiles,
  holdTransaction,
  ledger,
  ledgerOutcome,
  loadFixture,
  runDb,
  sessionsOn,
  startDb,
  truncatedProject,
  waitFor,
} from '../helpers/drills.js'
import { graphileMigrate, type CliResult } from '../helpers/project.js'
import { parseCommitted } from '../../scripts/verify/chain.js'
import { BACKFILLS } from '../../hooks/backfills/index.js'

export const FILES = committedFiles()
/** What graphile-migrate records for each committed file: its number and its hash. */
export const RECORDS = FILES.map((f) => ({
  filename: `${f.slice(0, 6)}.sql`,
  hash: parseCommitted(f, readFileSync(join(COMMITTED, f), 'utf8')).recordedHash,
}))

/** Every backfill, in the ledger's (name) order. */
export const BACKFILL_NAMES = BACKFILLS.map((b) => b.name).sort()

const referenceCache = new Map<string, Promise<string>>()

/**
 * A database holding `fixture` (or nothing) with exactly the first `count` committed migrations
 * applied by graphile-migrate, hooks not run: "what a crash after migration k must look like".
 */
export function databaseAfter(count: number, fixture?: string): Promise<string> {
  const key = `${count}:${fixture ?? ''}`
  let ref = referenceCache.get(key)
  if (!ref) {
    ref = (async () => {
      const db = await createTestDatabases('ref')
      if (fixture) await loadFixture(db.databaseUrl, fixture)
      if (count > 0) {
        const r = await graphileMigrate(['migrate'], { ...db.env, MIGRATION_HOOKS_DEFERRED: '1' }, truncatedProject(count))
        if (r.exitCode !== 0) throw new Error(`building the reference after ${count} migrations failed:\n${r.all}`)
      }
      return db.databaseUrl
    })()
    referenceCache.set(key, ref)
  }
  return ref
}

/** A database holding `fixture`, migrated by one uninterrupted `db:migrate` with default settings. */
export async function uninterrupted(fixture: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<TestDatabases> {
  const db = await createTestDatabases('reference')
  if (fixture) await loadFixture(db.databaseUrl, fixture)
  const r = await runDb(['migrate'], { ...db.env, ...env })
  expect(r.exitCode, r.all).toBe(0)
  return db
}

/**
 * The database is exactly "some prefix of the chain applied, nothing else": the recorded
 * migrations are the first k files with their hashes, and schema and rows equal a database on
 * which exactly those k migrations ran — or k + 1, when the next is a no-transaction migration
 * (see below). Returns k.
 */
export async function expectConsistentPrefix(url: string, fixture?: string): Promise<number> {
  const applied = await appliedMigrations(url)
  const k = applied.length
  expect(applied).toEqual(RECORDS.slice(0, k))
  let reference = await databaseAfter(k, fixture)
  const catalog = await catalogOf(url)
  // A `--! no-transaction` migration cannot commit together with its record: killed after
  // its statement ran (the server finishes a statement whose client has died) and before
  // graphile-migrate recorded it, the database holds its effect with k recorded. Such a
  // migration is idempotent (`if exists`, migrations/CONVENTIONS.md), and the re-run checked after this completes it.
  const next = FILES[k]
  if (next && catalog !== (await catalogOf(reference)) && /^--! no-transaction/m.test(readFileSync(join(COMMITTED, next), 'utf8'))) {
    reference = await databaseAfter(k + 1, fixture)
  }
  expect(catalog, `schema after ${k} migrations`).toBe(await catalogOf(reference))
  expect(await checksums(url), `rows after ${k} migrations`).toEqual(await checksums(reference))
  return k
}

/** Fully migrated: the fresh-build catalog, every migration recorded once, every backfill done. */
export async function expectComplete(url: string): Promise<void> {
  expect(await catalogOf(url)).toBe(committedSnapshot())
  expect(await appliedMigrations(url)).toEqual(RECORDS)
  const entries = await ledger(url)
  expect(entries.map((e) => e.name)).toEqual(BACKFILL_NAMES)
  for (const e of entries) expect(e, e.name).toMatchObject({ state: 'done' })
  const dupes = await withClient(url, (c) => c.query(`select filename from graphile_migrate.migrations group by 1 having count(*) > 1`))
  expect(dupes.rows).toEqual([])
}

/**
 * After an interrupted run: `db:migrate` again succeeds and completes the database; given the
 * reference (an uninterrupted run on the same fixture), with the same rows and the same
 * backfill outcome — the interruption lost and repeated nothing.
 */
export async function expectRerunCompletes(db: TestDatabases, reference?: TestDatabases): Promise<void> {
  const again = await runDb(['migrate'], db.env)
  expect(again.exitCode, again.all).toBe(0)
  await expectComplete(db.databaseUrl)
  if (!reference) return
  expect(await checksums(db.databaseUrl)).toEqual(await checksums(reference.databaseUrl))
  expect(ledgerOutcome(await ledger(db.databaseUrl))).toEqual(ledgerOutcome(await ledger(reference.databaseUrl)))
}

/**
 * `db:migrate` on `db` while another session holds analysis_audit_log: once a migration waits
 * for that lock, `disrupt(holderPid)` runs (end the sessions, restart the server…), then the
 * lock is released. Returns the run's result and the index of the first migration that needs
 * the table — the one that was in flight.
 */
export async function disruptBlockedMigration(
  db: TestDatabases,
  disrupt: (holderPid: number) => Promise<void> | void,
): Promise<{ result: CliResult; blockedIndex: number }> {
  const blockedIndex = FILES.findIndex((f) => readFileSync(join(COMMITTED, f), 'utf8').includes('analysis_audit_log'))
  const holder = await holdTransaction(db.databaseUrl, ['lock table public.analysis_audit_log in access exclusive mode'])
  const run = startDb(['migrate'], db.env)
  try {
    await waitFor(async () => (await sessionsOn(db.databaseUrl)).find((s) => s.blocked_by.includes(holder.pid)), {
      what: 'a migration to wait for the held lock',
      process: run,
      timeoutMs: 300_000,
    })
    await disrupt(holder.pid)
  } finally {
    await holder.release()
  }
  return { result: await run.result, blockedIndex }
}
