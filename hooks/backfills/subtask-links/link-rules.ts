/**
 * The row pass's part of sub-task linking (subtasks.md step 4): the matches decided by the
 * steps before the pass are written with every other new column of the row, so linking adds
 * no row version of its own.
 *  - every row of a matched sub-task conversation gets parent_task_request_id, is_subtask, the
 *    parent's conversation_id and the conversation's branch;
 *  - the matched element of the parent's task_tool_invocation gets linked_conversation_id =
 *    the sub-task's original conversation id (added to the value task-invocations computes in
 *    the same pass, when it rewrites that row too).
 * Rows that already have a parent_task_request_id are never touched (step 5).
 */
import type { RowRule } from '../../runner/row-rule.js'
import { type CallLink, linkCalls } from '../../rules/task-calls.js'
import { CALLS, MATCHES } from './scratch.js'

interface Match {
  parent: string
  conversation: string
  branch: string | null
}

export const subtaskRows: RowRule = {
  column: 'parent_task_request_id',
  type: 'uuid',
  // An index probe per row (the matches' primary key), no body read.
  pending: `a.parent_task_request_id is null and a.conversation_id is not null
    and exists (select 1 from ${MATCHES} m where m.conversation_id = a.conversation_id)`,
  read: {
    match: `(select jsonb_build_object('parent', m.parent_request_id, 'conversation', m.parent_conversation_id, 'branch', m.branch)
      from ${MATCHES} m where m.conversation_id = a.conversation_id)`,
  },
  compute(row) {
    const match = row.match as Match | null
    if (!match) return null
    if (match.branch === null) throw new Error(`subtask-links: a match under parent ${match.parent} has no branch (numbering incomplete)`)
    return { value: match.parent, also: { is_subtask: true, conversation_id: match.conversation, branch_id: match.branch } }
  },
  // The application may link a row meanwhile: only unlinked rows are moved.
  guard: 'still-null',
  also: { is_subtask: 'boolean', conversation_id: 'uuid', branch_id: 'text' },
}

export const parentCalls: RowRule = {
  column: 'task_tool_invocation',
  type: 'jsonb',
  pending: `exists (select 1 from ${MATCHES} m where m.parent_request_id = a.request_id)`,
  read: {
    links: `(select jsonb_agg(jsonb_build_object('position', m.position, 'conversation', m.conversation_id, 'call', k.call_id) order by m.position)
      from ${MATCHES} m join ${CALLS} k on k.parent_request_id = m.parent_request_id and k.position = m.position
      where m.parent_request_id = a.request_id)`,
  },
  compute(row) {
    const linking = linkCalls(row.old, (row.links ?? []) as CallLink[])
    if (linking.kind === 'mismatch') return 'skip'
    return linking.kind === 'linked' ? { value: linking.value } : null
  },
  // Compared with the value read: a row the application rewrote meanwhile is left alone.
  guard: 'unchanged',
}
