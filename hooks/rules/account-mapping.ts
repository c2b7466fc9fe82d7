/**
 * The train → account mapping file (ACCOUNT_MAPPING_FILE): a JSON object
 *   { "<train_id>": "<account_id>", ... }
 * Validated strictly before anything is written: a mistake names the file and the entry, and
 * the account-ids backfill then fails without changing a row.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { UserError } from '../../lib/errors.js'
import { findDuplicateKeys } from './json-duplicates.js'

/**
 * What is wrong with one identifier, or null. Both columns are varchar(255); surrounding
 * spaces would silently never match a train. (Plain checks, not a schema library: this module
 * loads with every hook run, and a validation library of ~100 modules cost each command a
 * third of a second of start-up.)
 */
function identifierProblem(value: unknown, what: string): string | null {
  if (typeof value !== 'string') return `${what} must be a string`
  if (value.length === 0) return `${what} must not be empty`
  if (value.length > 255) return `${what} is longer than 255 characters`
  if (value.trim() !== value) return `${what} has leading or trailing spaces`
  return null
}

export interface AccountMapping {
  file: string
  entries: Record<string, string>
  /** sha256 of the entries in key order: the backfill re-runs when it changes. */
  fingerprint: string
}

const fail = (file: string, detail: string) => new UserError(`ACCOUNT_MAPPING_FILE "${file}": ${detail}`)

/** Parse and validate mapping text; `file` is only used in messages. */
export function parseAccountMapping(text: string, file: string): AccountMapping {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw fail(file, `is not valid JSON (${(error as Error).message}).`)
  }
  const duplicates = findDuplicateKeys(text)
  if (duplicates.length) {
    const d = duplicates[0]
    throw fail(file, `entry "${d.key}"${d.path ? ` (in ${d.path})` : ''} appears more than once; keep exactly one.`)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw fail(file, 'the file must hold one JSON object of "train_id": "account_id" entries.')
  const entries: Record<string, string> = {}
  for (const [train, account] of Object.entries(raw)) {
    const problem = identifierProblem(train, 'the train id') ?? identifierProblem(account, 'the account id')
    if (problem) throw fail(file, `entry "${train}": ${problem}.`)
    entries[train] = account as string
  }
  const canonical = JSON.stringify(
    Object.keys(entries)
      .sort()
      .map((k) => [k, entries[k]]),
  )
  return { file, entries, fingerprint: createHash('sha256').update(canonical).digest('hex') }
}

export async function loadAccountMapping(file: string): Promise<AccountMapping> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw fail(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`)
  }
  return parseAccountMapping(text, file)
}
