/**
 * `npm run db:trace [file]`, and the check `db:commit` runs first: trace a migration file
 * (default: migrations/current.sql) on the scratch database and judge it.
 */
import { readFileSync } from 'node:fs'
import type pg from 'pg'
import { relative, resolve } from 'node:path'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import type { DatabaseUrls } from '../graphile/connection-settings.js'
import { buildScratchDatabase, requireShadow, SAMPLE_ROWS, scratchIsCurrent } from './scratch-database.js'
import { judge, type Verdict } from './stall-rules.js'
import { traceReport, traceSummary } from './report.js'
import { type Trace, traceSql } from './trace.js'
import { parseWaivers } from './waivers.js'

/** As .gmrc's pgSettings: graphile-migrate runs every migration with this search_path. */
const MIGRATION_SETTINGS = { search_path: 'public' }

export interface FileTrace {
  trace: Trace
  verdict: Verdict
  lines: string[]
  /** Nothing to run: the file holds only comments and blank lines. */
  empty: boolean
}

/** Whether `sql` holds a statement at all (graphile-migrate's commit refuses an empty current.sql). */
const hasStatements = (sql: string): boolean => sql.replace(/--.*$/gm, '').trim().length > 0

/** graphile-migrate runs a file starting with this header outside a transaction. */
const NO_TRANSACTION = /^--!\s*no-transaction\b/m

/**
 * A `--! no-transaction` migration cannot run in a transaction, so it cannot be traced and
 * rolled back. It is checked by its text instead: graphile-migrate sends it as one statement,
 * and the one statement that belongs there is a CONCURRENTLY index build, drop or reindex —
 * SHARE UPDATE EXCLUSIVE on its table, which blocks neither the proxy's reads nor its writes.
 * Anything else in such a file is refused: put it in an ordinary migration, where it is traced.
 */
const CONCURRENT_INDEX =
  /^(create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\s+(index|table)\s+concurrently)\s[^;]*;?$/i

function concurrentIndexStatement(sql: string, label: string): Trace {
  const statement = sql.replace(/--.*$/gm, '').trim().replace(/\s+/g, ' ')
  if (!CONCURRENT_INDEX.test(statement))
    throw new UserError(
      `${label} is a --! no-transaction migration, which runs outside a transaction and so cannot be traced and rolled back. ` +
        'Such a file may hold one CONCURRENTLY index statement (create/drop/reindex … concurrently) and nothing else; ' +
        'put other work in an ordinary migration, where the trace sees it.',
    )
  return { tables: [], queued: [], notValid: [], concurrent: statement }
}

/** Trace `sql` (named `label`) on `client`, a scratch database with the chain and rows. */
export async function traceMigrationText(client: pg.ClientBase, sql: string, label: string): Promise<FileTrace> {
  const waivers = parseWaivers(sql, label)
  const finish = (trace: Trace): FileTrace => {
    const verdict = judge(trace, waivers)
    return { trace, verdict, lines: traceReport(label, trace, verdict, SAMPLE_ROWS), empty: false }
  }
  if (!hasStatements(sql)) {
    const trace: Trace = { tables: [], queued: [], notValid: [] }
    return { trace, verdict: judge(trace), lines: [`Trace of ${label}: nothing to run.`], empty: true }
  }
  if (NO_TRANSACTION.test(sql)) return finish(concurrentIndexStatement(sql, label))
  return finish(await traceSql(client, sql, { settings: MIGRATION_SETTINGS }))
}

/** Trace `sql` on the scratch database at `shadowUrl`. */
export function traceOnScratch(shadowUrl: string, sql: string, label: string): Promise<FileTrace> {
  return withClient(shadowUrl, (c) => traceMigrationText(c, sql, label), { applicationName: 'migration trace' })
}

/** Build the scratch database, then trace `file`. */
export async function traceFile(urls: DatabaseUrls, projectDir: string, file: string, command: string): Promise<FileTrace> {
  const { shadowUrl } = requireShadow(urls, command)
  const path = resolve(projectDir, file)
  let sql: string
  try {
    sql = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UserError(`${command}: cannot read ${file}: ${(error as Error).message}`)
  }
  const inProject = relative(projectDir, path)
  const label = inProject && !inProject.startsWith('..') ? inProject : path
  // Checked before the rebuild: a malformed waiver is the author's to fix, and fast.
  parseWaivers(sql, label)
  if (!hasStatements(sql)) return traceOnScratch(shadowUrl, sql, label)
  await buildScratchDatabase(urls, projectDir, command)
  return traceOnScratch(shadowUrl, sql, label)
}

/**
 * For db:watch: a tracer that keeps the scratch database between saves, rebuilding it only
 * when it is no longer current (a new committed migration, a commit that rebuilt the shadow).
 * Given the current.sql just applied, it returns the one-line summary, or null when it holds
 * nothing to run.
 */
export function watchTracer(urls: DatabaseUrls, projectDir: string, migrationsFolder: string): (sql: string) => Promise<string | null> {
  return async (sql) => {
    if (!hasStatements(sql)) return null
    const { shadowUrl } = requireShadow(urls, 'db:watch')
    if (!(await scratchIsCurrent(shadowUrl, migrationsFolder))) await buildScratchDatabase(urls, projectDir, 'db:watch')
    const result = await traceOnScratch(shadowUrl, sql, 'current.sql')
    return traceSummary(result.trace, result.verdict)
  }
}
