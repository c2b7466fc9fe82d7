/**
 * parent_request_id: the request whose `current_message_hash` equals this row's
 * `parent_message_hash`, in the same train_id and conversation_id, and not the row itself.
 *
 * Choice among several candidates (documented in hooks/README.md, tested):
 *   the candidate with the greatest `timestamp` that is at or before the child's `timestamp`;
 *   among equal timestamps, the greatest request_id.
 * A candidate later than the child is never chosen: a parent's response exists before the
 * request that continues it, so such a row is a different branch with a repeated hash.
 * Only rows whose parent_request_id is NULL are touched; rows without any candidate stay NULL
 * and are counted as skipped. A per-row rule (hooks/runner/row-rule.ts): one indexed lookup
 * (idx on current_message_hash) per pending row.
 *
 * "Same conversation" means the conversation before sub-task linking, which moves sub-task
 * rows into their parent's conversation in the same row pass: a row already moved is compared
 * by the conversation it came from (subtask-links/scratch.ts).
 */
import type { Backfill } from '../runner/backfill.js'
import { CONVERSATION_BEFORE_LINKING, CREATE_CONVERSATION_BEFORE_LINKING } from './subtask-links/scratch.js'

const before = (row: string) => `${CONVERSATION_BEFORE_LINKING}(${row}.conversation_id, ${row}.branch_id, ${row}.parent_task_request_id)`

export const parentRequestIds: Backfill = {
  name: 'parent-request-ids',
  version: 1,
  description: 'parent_request_id from parent_message_hash (same train and conversation)',
  tables: ['api_requests'],
  row: {
    column: 'parent_request_id',
    type: 'uuid',
    pending: 'a.parent_request_id is null and a.parent_message_hash is not null and a.conversation_id is not null',
    read: {
      parent: `(select p.request_id::text from public.api_requests p
        where p.current_message_hash = a.parent_message_hash
          and p.train_id = a.train_id
          and (p.conversation_id = a.conversation_id or p.parent_task_request_id is not null or a.parent_task_request_id is not null)
          and ${before('p')} = ${before('a')}
          and p.request_id <> a.request_id and p.timestamp <= a.timestamp
        order by p.timestamp desc, p.request_id desc
        limit 1)`,
    },
    compute: (row) => (row.parent === null || row.parent === undefined ? 'skip' : { value: row.parent }),
    // The application may have set a parent meanwhile: only NULLs are filled.
    guard: 'still-null',
  },
  setupSql: [CREATE_CONVERSATION_BEFORE_LINKING],
  steps: [],
}
