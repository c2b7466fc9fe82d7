/**
 * The text by which the application recognises a sub-task request
 * (docs/subtasks.md, "What the application does at request time"):
 *  - only a request with exactly one message, whose role is `user`, is a candidate;
 *  - its text is the string content, or the `text` of every text block joined with "\n",
 *    empty texts dropped;
 *  - `<system-reminder>…</system-reminder>` blocks are then removed with system-hash.md's
 *    rule 4.2 pattern (which also eats the whitespace before each block). Nothing is trimmed:
 *    the spec compares the result with the Task prompt exactly.
 */

export type SubtaskText =
  | { kind: 'text'; text: string }
  /** Not a sub-task's first request (several messages, not from the user, no text). */
  | { kind: 'not-candidate' }
  /** Messages missing or of an unexpected shape: skipped and counted. */
  | { kind: 'malformed'; reason: string }

import { removeSystemReminders } from './system-reminders.js'

/**
 * From the message count and the first message only (what the backfill reads from the
 * database: `jsonb_array_length(body->'messages')` and `body->'messages'->0`).
 * `count` is null when `messages` is missing or not an array.
 */
export function firstMessageText(count: number | null, first: unknown): SubtaskText {
  if (count === null) return { kind: 'malformed', reason: 'messages is missing or not an array' }
  if (count !== 1) return { kind: 'not-candidate' }
  if (typeof first !== 'object' || first === null || Array.isArray(first))
    return { kind: 'malformed', reason: 'the message is not an object' }
  const message = first as { role?: unknown; content?: unknown }
  if (message.role !== 'user') return { kind: 'not-candidate' }
  let text: string
  if (typeof message.content === 'string') {
    text = message.content
  } else if (Array.isArray(message.content)) {
    const texts: string[] = []
    for (const block of message.content) {
      if (typeof block !== 'object' || block === null || (block as { type?: unknown }).type !== 'text') continue
      const t = (block as { text?: unknown }).text
      if (typeof t !== 'string') return { kind: 'malformed', reason: 'a text block has no string text' }
      if (t !== '') texts.push(t)
    }
    text = texts.join('\n')
  } else {
    return { kind: 'malformed', reason: 'the message content is neither a string nor an array' }
  }
  text = removeSystemReminders(text)
  return text === '' ? { kind: 'not-candidate' } : { kind: 'text', text }
}

/** Same, from a whole `messages` value (for callers that have it, and for tests). */
export function subtaskText(messages: unknown): SubtaskText {
  return firstMessageText(Array.isArray(messages) ? messages.length : null, Array.isArray(messages) ? messages[0] : undefined)
}
