/**
 * A deliberate exception, written in the migration itself so that it shows in review:
 *
 *   -- trace-waiver: api_requests row-updates: repairs the 3 rows of incident 2026-11-04, by id
 *
 * One line per table and check; the reason is required. The checks are those of
 * stall-rules.ts. A waiver that names a table that is not hot, or an unknown check, is an
 * error: a typo must not pass as an exception that waives nothing.
 */
import { UserError } from '../../lib/errors.js'
import { HOT_TABLES, hotTableNamed } from '../../lib/hot-tables.js'

export const CHECKS = ['rewrite', 'index-build', 'scan-under-lock', 'scan', 'row-updates', 'drop'] as const
export type Check = (typeof CHECKS)[number]

export interface Waiver {
  table: string
  check: Check
  reason: string
  line: number
}

const WAIVER = /^\s*--\s*trace-waiver\s*:(.*)$/i
const BODY = /^\s*(\S+)\s+(\S+?)\s*:\s*(.*?)\s*$/

/** Minimum length of a waiver's reason: a word like "ok" explains nothing to a reviewer. */
const MIN_REASON = 10

export function parseWaivers(sql: string, file: string): Waiver[] {
  const waivers: Waiver[] = []
  sql.split('\n').forEach((text, i) => {
    const m = WAIVER.exec(text)
    if (!m) return
    const where = `${file}:${i + 1}`
    const body = BODY.exec(m[1] ?? '')
    const usage = `write it as "-- trace-waiver: <table> <check>: <reason>", with <check> one of ${CHECKS.join(', ')}`
    if (!body) throw new UserError(`${where}: this trace waiver cannot be read; ${usage}.`)
    const [, tableName, check, reason] = body as unknown as [string, string, string, string]
    const table = hotTableNamed(tableName)
    if (!table)
      throw new UserError(`${where}: "${tableName}" is not a hot table (${HOT_TABLES.join(', ')}); only their checks can be waived.`)
    if (!(CHECKS as readonly string[]).includes(check)) throw new UserError(`${where}: unknown check "${check}"; ${usage}.`)
    if (reason.length < MIN_REASON)
      throw new UserError(`${where}: the waiver needs its reason (at least ${MIN_REASON} characters), for the reviewer.`)
    waivers.push({ table, check: check as Check, reason, line: i + 1 })
  })
  return waivers
}
