/**
 * Soak drill (`npm run test:soak`, a phase of `npm test` of its own; SOAK=0 skips it): a
 * legacy-like database of 15,000 rows (the script-chain fixture's rows multiplied, soak-data.ts), migrated by `db:migrate` and SIGKILLed at a random moment of the
 * migrations or backfills, again and again; after each kill the re-run completes and the
 * result is identical — every column of every row of every table, the ledger's counts, the
 * schema — to one uninterrupted run.
 *
 *   npm run test:soak
 *
 * SOAK_TRIALS (default 20), SOAK_CONCURRENCY (trials at once, default 2), SOAK_ROWS (default
 * 15000), SOAK_SEED (replay the random kill moments). Prints the number of trials and where
 * each kill landed. The kill moments are drawn over the uninterrupted run's own duration, so
 * a smaller table lands as many kills in each phase; the rows make each trial cost less, not
 * check less (15,000 rows still take the row pass through dozens of batches and chunks).
 * SOAK_ROWS=50000 is the size this drill ran at inside the main phase before.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { createTestDatabases, dropDatabase, rootUrl, urlFor, withClient } from '../helpers/databases.js'
import {
  appliedMigrations,
  checksums,
  ledger,
  ledgerOutcome,
  loadFixture,
  runDb,
  seededRandom,
  sessionsOn,
  startDb,
  waitFor,
  waitForNoSessions,
} from '../helpers/drills.js'
import { BACKFILL_NAMES, RECORDS } from '../drills/support.js'
import { multiplyLegacyRows } from './soak-data.js'

const TRIALS = Number(process.env.SOAK_TRIALS ?? 20)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 2)
const ROWS = Number(process.env.SOAK_ROWS ?? 15_000)
const FIXTURE_ROWS = 18

/** A database copied from `template` (file copy: fast), with its shadow; dropped by `drop`. */
async function cloneOf(template: string, label: string) {
  const name = `${label}_${randomBytes(4).toString('hex')}`
  await withClient(rootUrl(), async (c) => {
    await c.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(template)}`)
    await c.query(`create database ${pg.escapeIdentifier(name + '_shadow')}`)
  })
  const databaseUrl = urlFor(name)
  return {
    databaseUrl,
    env: { DATABASE_URL: databaseUrl, SHADOW_DATABASE_URL: urlFor(name + '_shadow'), ROOT_DATABASE_URL: rootUrl() },
    async drop() {
      if (process.env.KEEP_TEST_DATABASES) return
      await dropDatabase(name)
      await dropDatabase(name + '_shadow')
    },
  }
}

/** Where a run was when it was killed: migrations applied, and the backfill it was in. */
async function whereStopped(url: string): Promise<string> {
  const applied = (await appliedMigrations(url)).length
  if (applied < RECORDS.length) return `migrations (${applied}/${RECORDS.length} applied)`
  const entries = await ledger(url)
  if (!entries.length) return 'after the migrations, before the first backfill'
  const current = entries.find((e) => e.state === 'running' || e.state === 'pending')
  if (current) return `backfill ${current.name}${current.step ? ` (${current.step})` : current.state === 'pending' ? ' (starting)' : ''}`
  if (entries.length === BACKFILL_NAMES.length && entries.every((e) => e.state === 'done')) return 'after the backfills (refresh/ANALYZE)'
  return `between backfills (${entries.filter((e) => e.state === 'done').length} done)`
}

describe.skipIf(process.env.SOAK === '0')('soak: random SIGKILLs on a legacy database of SOAK_ROWS rows', () => {
  it(`every interrupted deploy ends identical to an uninterrupted one`, { timeout: 3_600_000 }, async () => {
    const started = Date.now()
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 1e9))
    const random = seededRandom(seed)

    // The template: the fixture plus generated copies of its rows.
    const template = await createTestDatabases('soak_tpl')
    await loadFixture(template.databaseUrl, 'script-chain.sql')
    const total = await withClient(template.databaseUrl, (c) => multiplyLegacyRows(c, Math.ceil((ROWS - FIXTURE_ROWS) / FIXTURE_ROWS)))
    expect(total).toBeGreaterThanOrEqual(ROWS)

    // The reference: one uninterrupted run, timed from the moment it is connected.
    const reference = await cloneOf(template.name, 'soak_ref')
    const connected = (url: string, run: ReturnType<typeof startDb>) =>
      waitFor(async () => (await sessionsOn(url)).some((s) => s.application_name === 'db:migrate deploy lock'), {
        what: 'db:migrate to connect',
        process: run,
        intervalMs: 25,
        timeoutMs: 300_000,
      })
    const refRun = startDb(['migrate'], reference.env)
    await connected(reference.databaseUrl, refRun)
    const refStart = Date.now()
    await waitFor(async () => (await appliedMigrations(reference.databaseUrl)).length === RECORDS.length, {
      what: 'the reference run to apply the migrations',
      process: refRun,
      intervalMs: 25,
      timeoutMs: 600_000,
    })
    const migrating = Date.now() - refStart
    const refResult = await refRun.result
    expect(refResult.exitCode, refResult.all).toBe(0)
    const duration = Date.now() - refStart
    const expected = {
      rows: await checksums(reference.databaseUrl),
      ledger: ledgerOutcome(await ledger(reference.databaseUrl)),
    }
    expect(await catalogOf(reference.databaseUrl)).toBe(committedSnapshot())
    await reference.drop()

    // Kill moments are drawn up front, so SOAK_SEED replays them whatever the interleaving.
    // The migrations take a few seconds of a run that mostly backfills: every fourth trial
    // is aimed at them, the others anywhere in the run.
    const moments = Array.from({ length: TRIALS }, (_, i) => Math.round(random() * (i % 4 === 0 ? migrating * 1.1 : duration * 0.95)))
    const report: string[] = []
    let next = 0
    const worker = async () => {
      for (let i = next++; i < TRIALS; i = next++) {
        // A trial counts only once a run was really killed mid-way. A run can be quicker than
        // the reference (which shared the machine with other test files): when it finished
        // before its moment, that uninterrupted run is checked like the others and a new
        // moment is drawn within the time it actually took (from the trial's own seed).
        const retry = seededRandom(seed + 1 + i)
        let moment = moments[i]
        for (let attempt = 1; ; attempt++) {
          const db = await cloneOf(template.name, `soak_${i}`)
          try {
            const run = startDb(['migrate'], db.env)
            await connected(db.databaseUrl, run)
            const started = Date.now()
            const finished = await Promise.race([
              new Promise<false>((r) => setTimeout(() => r(false), moment)), // the random moment of the crash
              run.result.then(() => true as const),
            ])
            const took = Date.now() - started
            const killed = finished ? await run.result : await run.kill('SIGKILL')
            await waitForNoSessions(db.databaseUrl)
            const where = killed.signal ? await whereStopped(db.databaseUrl) : null

            const rerun = await runDb(['migrate'], db.env)
            const label = `trial ${i}, attempt ${attempt}: killed in ${where ?? 'nothing (it had finished)'}`
            expect(rerun.exitCode, `${label}: ${rerun.all}`).toBe(0)
            expect(await appliedMigrations(db.databaseUrl), label).toEqual(RECORDS)
            expect(await catalogOf(db.databaseUrl), label).toBe(committedSnapshot())
            expect(ledgerOutcome(await ledger(db.databaseUrl)), label).toEqual(expected.ledger)
            expect(await checksums(db.databaseUrl), label).toEqual(expected.rows)
            if (where) {
              report.push(`  trial ${String(i + 1).padStart(2)}: killed ${String(moment).padStart(6)} ms in: ${where} → identical`)
              break
            }
            expect(attempt, `trial ${i}: the run kept finishing before its kill moment`).toBeLessThan(5)
            moment = Math.round(retry() * took * 0.9)
          } finally {
            await db.drop()
          }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, CONCURRENCY) }, worker))

    console.log(
      [
        `soak: ${TRIALS} trials, each killed mid-run, on ${total} rows, seed ${seed} (SOAK_SEED to replay), ` +
          `uninterrupted run ${duration} ms (migrations ${migrating} ms), ${Math.round((Date.now() - started) / 1000)} s in all; every final state identical:`,
        ...report.sort(),
      ].join('\n'),
    )
    expect(report).toHaveLength(TRIALS)
  })
})
