/**
 * The train → account mapping file (ACCOUNT_MAPPING_FILE): a JSON object
 *   { "<train_id>": "<account_id>", ... }
 * Validated strictly before anything is written: a mistake names the file and the entry, and
 * the account-ids backfill then fails without changing a row.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { UserError } from '../../lib/errors.js'
import { findDuplicateKeys } from './json-duplicates.js'

/** Both columns are varchar(255); surrounding spaces would silently never match a train. */
const Identifier = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(255, `${what} is longer than 255 characters`)
    .refine((s) => s.trim() === s, `${what} has leading or trailing spaces`)

const MappingSchema = z.record(Identifier('the train id'), Identifier('the account id'), {
  error: 'the file must hold one JSON object of "train_id": "account_id" entries',
})

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
  const parsed = MappingSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    if (issue.path.length === 0) throw fail(file, `${issue.message}.`)
    const entry = String(issue.path[0])
    const detail = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message
    throw fail(file, `entry "${entry}": ${detail}.`)
  }
  const entries = parsed.data
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
