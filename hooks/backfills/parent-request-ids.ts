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
import { keyWalkStep, rangeFilter } from '../lib/key-walk.js'

// One indexed lookup per child (idx on current_message_hash), inside a key range of children.
const resolve = (range: string) => `
  with children as (
    select c.request_id, c.parent_message_hash, c.train_id, c.conversation_id, c.timestamp
    from api_requests c
    where ${range}
      and c.parent_request_id is null and c.parent_message_hash is not null and c.conversation_id is not null
  ), resolved as (
    select ch.request_id, (
      select p.request_id from api_requests p
      where p.current_message_hash = ch.parent_message_hash
        and p.train_id = ch.train_id and p.conversation_id = ch.conversation_id
        and p.request_id <> ch.request_id and p.timestamp <= ch.timestamp
      order by p.timestamp desc, p.request_id desc
      limit 1) as parent
    from children ch
  ), applied as (
    update api_requests a set parent_request_id = r.parent
    from resolved r
    where a.request_id = r.request_id and r.parent is not null and a.parent_request_id is null
    returning 1
  )
  select (select count(*)::int from applied) as changed,
         (select count(*)::int from resolved where parent is null) as skipped`

export const parentRequestIds: Backfill = {
  name: 'parent-request-ids',
  version: 1,
  description: 'parent_request_id from parent_message_hash (same train and conversation)',
  tables: ['api_requests'],
  steps: [
    keyWalkStep('walk', async (ctx, after, upTo) => {
      const range = rangeFilter(after, upTo, 1, 'c.request_id')
      const { rows } = await ctx.client.query<{ changed: number; skipped: number }>(resolve(range.sql), range.params)
      return rows[0]
    }),
  ],
}
