/**
 * The application's system-prompt hash, exactly as docs/system-hash.md states it.
 * Pure: no I/O. The backfill must produce the very value the application stores, otherwise
 * analytics grouping by system prompt split in two — so every rule below is literal, including
 * the quirks (texts are joined *before* normalising; line endings are not normalised).
 */
import { createHash } from 'node:crypto'
import { removeSystemReminders } from './system-reminders.js'

const CLI_PREFIX = 'You are an interactive CLI tool that helps users with software engineering tasks'

/**
 * Rule 4, in order. Each regex is global, so every occurrence is replaced. Rule 4.2
 * (`/\s*<system-reminder>[\s\S]*?<\/system-reminder>/gi` → "") is a function with the same
 * result in linear time (see system-reminders.ts).
 */
const NORMALISATIONS: Array<[RegExp, string] | ((text: string) => string)> = [
  [/<transient_context>[\s\S]*?<\/transient_context>/g, ''],
  removeSystemReminders,
  [/gitStatus:[\s\S]*?(?:\n\n|$)/g, '\n\n'],
  [/(?:^|\n)Status:\s*\n(?:[^\n]*\n)*?(?=\n\n|$)/gm, '\n'],
  [/(?:^|\n)Current branch:.*$/gm, ''],
  [/(?:^|\n)Main branch.*:.*$/gm, ''],
  [/(?:^|\n)Recent commits:.*\n(?:(?!^\n).*\n)*/gm, '\n'],
  [/\n{3,}/g, '\n\n'],
]

/** Rule 2: the text the hash is computed from, or null when there is none. */
export function systemText(sys: unknown): string | null {
  if (typeof sys === 'string') return sys === '' ? null : sys
  if (Array.isArray(sys)) {
    // A block without a string `text` contributes the empty string (it still gets its "\n").
    const joined = sys
      .map((block) =>
        block && typeof block === 'object' && typeof (block as { text?: unknown }).text === 'string'
          ? (block as { text: string }).text
          : '',
      )
      .join('\n')
    return joined === '' ? null : joined
  }
  return null
}

/** Rules 3–4: the stable text, before hashing. */
export function stableSystemText(text: string): string {
  if (text.trim().startsWith(CLI_PREFIX)) return CLI_PREFIX
  let out = text
  for (const step of NORMALISATIONS) out = typeof step === 'function' ? step(out) : out.replace(step[0], step[1])
  return out.trim()
}

/** The value of api_requests.system_hash for a request body whose `system` is `sys`. */
export function computeSystemHash(sys: unknown): string | null {
  const text = systemText(sys)
  if (text === null) return null
  const stable = stableSystemText(text)
  if (stable === '') return null
  return createHash('sha256').update(stable, 'utf8').digest('hex')
}
