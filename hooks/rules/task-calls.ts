/**
 * Task tool calls in a response, in the shape the application stores in
 * `task_tool_invocation` and the dashboard reads: `[{ id, name, input }]` in content order
 * (see docs/subtasks.md). Pure functions; the backfill feeds them JSON read by path.
 */

export interface TaskCall {
  id: string
  name: string
  input: Record<string, unknown>
  linked_conversation_id?: string
}

export type Extraction =
  | { kind: 'calls'; calls: TaskCall[] }
  /** The content has no Task call: the application stores NULL, so do we. */
  | { kind: 'none' }
  /** Content that is not an array, or a Task block lacking its id or input: skipped, counted. */
  | { kind: 'malformed'; reason: string }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Is this content block a Task tool call? (Same test as the SQL pre-filter in the backfill.) */
export function isTaskBlock(block: unknown): boolean {
  return isObject(block) && block.type === 'tool_use' && block.name === 'Task'
}

/**
 * The Task calls of `content` (a response's `content`). A single bad Task block makes the
 * whole row malformed: dropping it would shift the positions that sub-task numbering uses.
 */
export function extractTaskCalls(content: unknown): Extraction {
  if (!Array.isArray(content)) return { kind: 'malformed', reason: 'content is not an array' }
  const calls: TaskCall[] = []
  for (const block of content) {
    if (!isTaskBlock(block)) continue
    const b = block as Record<string, unknown>
    if (typeof b.id !== 'string' || b.id === '') return { kind: 'malformed', reason: 'a Task block has no id' }
    if (!isObject(b.input)) return { kind: 'malformed', reason: 'a Task block has no input object' }
    calls.push({ id: b.id, name: b.name as string, input: b.input })
  }
  return calls.length ? { kind: 'calls', calls } : { kind: 'none' }
}

/** Legacy 003's shape: an element with `prompt` but no `input`. */
export function isLegacyShape(invocations: unknown): boolean {
  return Array.isArray(invocations) && invocations.some((e) => isObject(e) && 'prompt' in e && !('input' in e))
}

/**
 * Rewrite a legacy-shaped array into the application's shape, from the response's calls,
 * keeping each `linked_conversation_id`. Legacy elements are matched to calls by tool-use id;
 * legacy 003 wrote "" for a missing id, and then only the position can tell.
 */
export function rewriteLegacy(legacy: unknown[], calls: TaskCall[]): TaskCall[] {
  const out = calls.map((c) => ({ ...c }))
  legacy.forEach((element, index) => {
    if (!isObject(element)) return
    const linked = element.linked_conversation_id
    if (linked === undefined || linked === null) return
    const byId = typeof element.id === 'string' && element.id !== '' ? out.find((c) => c.id === element.id) : undefined
    const target = byId ?? (typeof element.id === 'string' && element.id !== '' ? undefined : out[index])
    if (target) target.linked_conversation_id = linked as string
  })
  return out
}

/** A decided link: the call at `position` (1-based) of a parent row starts `conversation`. */
export interface CallLink {
  position: number
  conversation: string
  /** The call's tool-use id when it had one: the element there must still carry it. */
  call: string | null
}

export type Linking = { kind: 'linked'; value: unknown[] } | { kind: 'unchanged' } | { kind: 'mismatch'; reason: string }

/**
 * The parent row's `task_tool_invocation` with `linked_conversation_id` set on each linked
 * call. A position that holds no object, another call than the one matched, or a call linked
 * to another conversation means the value changed since the calls were read: nothing is
 * written (counted as skipped).
 */
export function linkCalls(invocations: unknown, links: CallLink[]): Linking {
  if (!Array.isArray(invocations)) return { kind: 'mismatch', reason: 'task_tool_invocation is not an array' }
  const out = [...invocations]
  let changed = false
  for (const link of links) {
    const element = out[link.position - 1]
    if (!isObject(element)) return { kind: 'mismatch', reason: `no call at position ${link.position}` }
    if (link.call !== null && element.id !== link.call) return { kind: 'mismatch', reason: `another call at position ${link.position}` }
    if (element.linked_conversation_id === link.conversation) continue
    // Linked to another conversation since the calls were read: the application's link stands.
    if (element.linked_conversation_id !== undefined && element.linked_conversation_id !== null)
      return { kind: 'mismatch', reason: `the call at position ${link.position} is already linked to another conversation` }
    out[link.position - 1] = { ...element, linked_conversation_id: link.conversation }
    changed = true
  }
  return changed ? { kind: 'linked', value: out } : { kind: 'unchanged' }
}
