/**
 * Reading and checking the committed chain on disk, independently of graphile-migrate (which
 * checks a file only at the moment it applies it).
 *
 * Each committed file is `--! Header: value` lines, a blank line, then the body. Its Hash is
 * sha1 over: the previous file's hash, a newline, the trimmed body — trimmed as a whole and
 * followed by one newline. Previous must equal the hash of the file before it ("-" for the
 * first).
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const COMMITTED_FILE = /^\d{6}(-[-\w]+)?\.sql$/

export interface CommittedMigration {
  filename: string
  headers: Record<string, string | null>
  body: string
  /** The hash recorded in the file's header. */
  recordedHash: string | undefined
  /** The hash recomputed from the body and the recorded Previous. */
  computedHash: string
  previous: string | null
  /** Problems with the file itself (parse errors, CRLF, wrong hash). */
  problems: string[]
}

export function migrationHash(body: string, previousHash: string | null): string {
  return (
    'sha1:' +
    createHash('sha1')
      .update(((previousHash ?? '') + '\n' + body.trim()).trim() + '\n')
      .digest('hex')
  )
}

export function parseCommitted(filename: string, text: string): CommittedMigration {
  const problems: string[] = []
  if (text.includes('\r\n')) {
    problems.push('has CRLF line endings; hashes cover bytes, so convert it back to LF (see .gitattributes)')
  }
  const lines = text.split('\n')
  const headers: Record<string, string | null> = {}
  let i = 0
  for (; i < lines.length; i++) {
    const m = /^--! ([A-Z][a-zA-Z0-9_]*)(?::(.*))?$/.exec(lines[i]!)
    if (!m) break
    headers[m[1]!] = m[2] ? m[2].trim() : null
  }
  if (lines[i] !== '') problems.push('has no blank line after its --! headers')
  const body = lines.slice(i).join('\n').trim() + '\n'
  const previous = headers.Previous === '-' || headers.Previous == null ? null : headers.Previous
  const recordedHash = headers.Hash ?? undefined
  const computedHash = migrationHash(body, previous)
  if (!recordedHash) problems.push('has no --! Hash header')
  else if (recordedHash !== computedHash && !('AllowInvalidHash' in headers)) {
    problems.push(`was edited after it was committed (its body hashes to ${computedHash}, its header says ${recordedHash})`)
  }
  return { filename, headers, body, recordedHash, computedHash, previous, problems }
}

export function readCommittedChain(migrationsFolder: string): CommittedMigration[] {
  const dir = join(migrationsFolder, 'committed')
  return readdirSync(dir)
    .filter((f) => COMMITTED_FILE.test(f))
    .sort()
    .map((f) => parseCommitted(f, readFileSync(join(dir, f), 'utf8')))
}

/** Problems in the on-disk chain: per-file problems plus broken Previous links and numbering. */
export function chainProblems(chain: CommittedMigration[]): string[] {
  const problems: string[] = []
  let previousHash: string | null = null
  chain.forEach((m, index) => {
    for (const p of m.problems) problems.push(`${m.filename} ${p}`)
    if (m.previous !== previousHash) {
      problems.push(
        `${m.filename}: its Previous (${m.previous ?? '-'}) is not the hash of the file before it (${previousHash ?? '-'}); a migration is missing, extra or out of order`,
      )
    }
    const number = Number(m.filename.slice(0, 6))
    if (number !== index + 1) problems.push(`${m.filename}: numbered ${number}, expected ${index + 1} (missing or out-of-order file)`)
    previousHash = m.recordedHash ?? null
  })
  return problems
}
