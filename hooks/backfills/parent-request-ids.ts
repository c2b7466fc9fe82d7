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
import type { Backfill } from '../lib/backfill.js'
import { keyWalkPlannedStep, rangeFilter } from '../lib/key-walk.js'

// Read phase: one indexed lookup per child (idx on current_message_hash), inside a key range
// of children.
const RESOLVE = (range: string) => `
  select ch.request_id::text as id, (
    select p.request_id::text from api_requests p
    where p.current_message_hash = ch.parent_message_hash
      and p.train_id = ch.train_id and p.conversation_id = ch.conversation_id
      and p.request_id <> ch.request_id and p.timestamp <= ch.timestamp
    order by p.timestamp desc, p.request_id desc
    limit 1) as parent
  from api_requests ch
  where ${range}
    and ch.parent_request_id is null and ch.parent_message_hash is not null and ch.conversation_id is not null`

// Write phase: only rows still without a parent (the application may have set one meanwhile).
const WRITE = `update api_requests a set parent_request_id = v.parent
  from unnest($1::uuid[], $2::uuid[]) as v(id, parent)
  where a.request_id = v.id and a.parent_request_id is null`

interface Link {
  id: string
  parent: string
}

export const parentRequestIds: Backfill = {
  name: 'parent-request-ids',
  version: 1,
  description: 'parent_request_id from parent_message_hash (same train and conversation)',
  tables: ['api_requests'],
  steps: [
    keyWalkPlannedStep<Link>(
      'walk',
      async (ctx, after, upTo) => {
        const range = rangeFilter(after, upTo, 1, 'ch.request_id')
        const { rows } = await ctx.client.query<{ id: string; parent: string | null }>(RESOLVE(range.sql), range.params)
        const work = rows.filter((r): r is Link => r.parent !== null)
        return { work, skipped: rows.length - work.length }
      },
      async (ctx, work) => (await ctx.client.query(WRITE, [work.map((w) => w.id), work.map((w) => w.parent)])).rowCount ?? 0,
    ),
  ],
}
