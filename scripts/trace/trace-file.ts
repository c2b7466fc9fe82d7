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
import { assertShadowIsSafe } from '../guards/shadow-guard.js'
import { buildScratchDatabase, markScratchDirty, requireShadow, scratchIsCurrent } from './scratch-database.js'
import { SAMPLE_ROWS } from './sample.js'
import { judge, type Verdict } from './stall-rules.js'
import { traceReport, traceSummary } from './report.js'
import { type Trace, traceSql } from './trace.js'
import { parseWaivers } from './waivers.js'

/**
 * As .gmrc's pgSettings, which graphile-migrate sets on every migration's session (a test
 * compares the two): the same names resolve, and a traced lock that cannot be had fails in 2 s.
 */
export const MIGRATION_SETTINGS = { search_path: 'public', lock_timeout: '2s', statement_timeout: '15min' }

export interface FileTrace {
  trace: Trace
  verdict: Verdict
  lines: string[]
  /** Nothing to run: the file holds only comments and blank lines. */
  empty: boolean
}

/** Whether `sql` holds a statement at all (graphile-migrate's commit refuses an empty current.sql). */
const withoutComments = (sql: string): string => sql.replace(/--.*$/gm, '').trim()
const hasStatements = (sql: string): boolean => withoutComments(sql).length > 0

/**
 * graphile-migrate runs a migration outside a transaction when the first line of its body
 * (after a committed file's --! Previous/Hash/Message headers and their blank line) is this.
 */
const NO_TRANSACTION = /^--!\s*no-transaction\b/
const COMMITTED_HEADER = /^--! [A-Z][a-zA-Z0-9_]*(:.*)?$/

function isNoTransaction(sql: string): boolean {
  const lines = sql.split('\n')
  let i = 0
  while (i < lines.length && COMMITTED_HEADER.test(lines[i]!)) i++
  if (i > 0 && lines[i] === '') i++
  return NO_TRANSACTION.test(lines[i] ?? '')
}

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
  const statement = withoutComments(sql).replace(/\s+/g, ' ')
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
  if (isNoTransaction(sql)) return finish(concurrentIndexStatement(sql, label))
  return finish(await traceSql(client, sql, { settings: MIGRATION_SETTINGS }))
}

/** Trace `sql` on the scratch database at `shadowUrl`. */
export async function traceOnScratch(shadowUrl: string, sql: string, label: string): Promise<FileTrace> {
  const result = await withClient(shadowUrl, (c) => traceMigrationText(c, sql, label), { applicationName: 'migration trace' })
  // Its COMMIT kept its changes there: the next trace must not run on them.
  if (result.trace.endedOwnTransaction) await markScratchDirty(shadowUrl)
  return result
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
export function watchTracer(urls: DatabaseUrls, projectDir: string): (sql: string) => Promise<string | null> {
  let checked = false
  return async (sql) => {
    if (!hasStatements(sql)) return null
    const { shadowUrl } = requireShadow(urls, 'db:watch')
    // Once, even when the scratch database is current and needs no rebuild: a shadow URL that
    // names the development database would otherwise be traced on (and a COMMIT kept there).
    if (!checked) await assertShadowIsSafe(urls, 'db:watch')
    checked = true
    if (!(await scratchIsCurrent(shadowUrl, projectDir))) await buildScratchDatabase(urls, projectDir, 'db:watch')
    const result = await traceOnScratch(shadowUrl, sql, 'current.sql')
    return traceSummary(result.trace, result.verdict)
  }
}
