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
 * and are counted as skipped.
 */
import type { Backfill } from '../runner/backfill.js'
import { type ColumnValue, fillWhereNull, keyWalkPlannedStep } from '../runner/key-walk.js'

const PENDING = `ch.parent_request_id is null and ch.parent_message_hash is not null and ch.conversation_id is not null`

// Read phase: for each pending child of the page, one indexed lookup (idx on
// current_message_hash).
const READ = (page: string) => `
  select ch.request_id::text as id, ${PENDING} as pending,
    case when ${PENDING} then (
      select p.request_id::text from public.api_requests p
      where p.current_message_hash = ch.parent_message_hash
        and p.train_id = ch.train_id and p.conversation_id = ch.conversation_id
        and p.request_id <> ch.request_id and p.timestamp <= ch.timestamp
      order by p.timestamp desc, p.request_id desc
      limit 1) end as parent
  from public.api_requests ch
  where ${page}`

export const parentRequestIds: Backfill = {
  name: 'parent-request-ids',
  version: 1,
  description: 'parent_request_id from parent_message_hash (same train and conversation)',
  tables: ['api_requests'],
  steps: [
    keyWalkPlannedStep<{ id: string; pending: boolean; parent: string | null }, ColumnValue>('walk', {
      select: READ,
      column: 'ch.request_id',
      compute(rows) {
        const pending = rows.filter((r) => r.pending)
        const work = pending.flatMap(({ id, parent }) => (parent === null ? [] : [{ id, value: parent }]))
        return { work, skipped: pending.length - work.length }
      },
      // Only rows still without a parent: the application may have set one meanwhile.
      write: fillWhereNull('parent_request_id', 'uuid'),
    }),
  ],
}
