/**
 * `npm run db:verify`: is the committed chain on disk intact, and is it what the target
 * database recorded as applied?
 *
 * graphile-migrate only checks a file's hash at the moment it applies it; a file edited
 * after it was applied goes unnoticed forever. This compares every committed file with
 * graphile_migrate.migrations in the target database and names, by file:
 *   edited       the body no longer hashes to its header, or the header differs from the
 *                hash recorded when it was applied
 *   missing      applied in the database, but no such file in migrations/committed
 *   extra        a file the database skipped while later ones were applied
 *   out of order a Previous link or the numbering does not follow the file before it
 * Pending files (not applied yet) are listed for information. Exit code 1 on any problem.
 */
import { join } from 'node:path'
import { readCommittedChain, chainProblems, type CommittedMigration } from './chain.js'
import { appliedMigrations, type AppliedMigration } from './applied-migrations.js'
import { withClient } from '../../lib/connection.js'

export interface VerifyReport {
  problems: string[]
  pending: string[]
  applied: number
  files: number
}

const number = (filename: string) => filename.slice(0, 6)

export function compareWithDatabase(chain: CommittedMigration[], applied: AppliedMigration[]): VerifyReport {
  const problems = chainProblems(chain)
  const files = new Map(chain.map((m) => [number(m.filename), m]))
  const recorded = new Map(applied.map((a) => [number(a.filename), a]))
  const lastApplied =
    applied
      .map((a) => number(a.filename))
      .sort()
      .at(-1) ?? ''
  for (const a of applied) {
    const file = files.get(number(a.filename))
    if (!file) {
      problems.push(`${a.filename}: applied to the database (hash ${a.hash}) but missing from migrations/committed`)
      continue
    }
    if (file.recordedHash !== a.hash) {
      problems.push(
        `${file.filename}: edited after it was applied (database recorded ${a.hash}, the file's header says ${file.recordedHash})`,
      )
    } else if (file.computedHash !== a.hash && !('AllowInvalidHash' in file.headers)) {
      problems.push(
        `${file.filename}: edited after it was applied (its body now hashes to ${file.computedHash}, the database recorded ${a.hash})`,
      )
    }
  }
  const pending: string[] = []
  for (const m of chain) {
    if (recorded.has(number(m.filename))) continue
    if (number(m.filename) < lastApplied) {
      problems.push(`${m.filename}: extra — not applied, although later migrations were (added out of order?)`)
    } else pending.push(m.filename)
  }
  return { problems, pending, applied: applied.length, files: chain.length }
}

export async function verify(databaseUrl: string, migrationsFolder: string): Promise<VerifyReport> {
  const applied = await withClient(databaseUrl, (client) => appliedMigrations(client), { applicationName: 'db:verify' })
  return compareWithDatabase(readCommittedChain(migrationsFolder), applied)
}

export function printVerifyReport(report: VerifyReport): number {
  if (report.problems.length) {
    console.log(`db:verify found ${report.problems.length} problem(s):`)
    for (const p of report.problems) console.log(`  ✗ ${p}`)
  } else {
    console.log(`db:verify: ${report.files} committed migration(s) intact; ${report.applied} applied, hashes match the database.`)
  }
  if (report.pending.length) console.log(`Pending (not applied yet): ${report.pending.join(', ')}`)
  return report.problems.length ? 1 : 0
}

export const migrationsFolderOf = (projectRoot: string) => join(projectRoot, 'migrations')
