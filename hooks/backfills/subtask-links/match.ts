/**
 * Deciding steps of sub-task linking (subtasks.md steps 3–4), on the scratch tables only:
 *
 *  match   Greedy assignment, in order of each candidate conversation's first-row time
 *          (then its first row's request_id): the conversation takes the *nearest* unclaimed
 *          call before it — greatest parent timestamp — whose prompt equals its text, whose
 *          window (parent timestamp … parent timestamp + duration_ms + HOOKS_SUBTASK_WINDOW_MS)
 *          contains its first row, and whose parent is in another conversation. Ties: lowest
 *          parent request_id, then lowest call position. A claimed call is never reused.
 *  number  Per parent conversation, branch `subtask_N`: N counts its new sub-task
 *          conversations by first-row time, after the largest `subtask_K` already present.
 *
 * Both run before anything in api_requests changes, so their input is stable across a kill.
 */
import type { Step } from '../../lib/backfill.js'
import { CALLS, CONVERSATIONS, cursorTime, MATCHES } from './scratch.js'

/** Cursor over (first_ts, first_request_id); the timestamp is kept as text to keep microseconds. */
type TimeCursor = [string, string]

const afterTime = (cursor: unknown, tsParam: number) =>
  Array.isArray(cursor)
    ? { sql: `(first_ts, first_request_id) > ($${tsParam}::timestamptz, $${tsParam + 1}::uuid)`, params: cursor as TimeCursor }
    : { sql: 'true', params: [] as string[] }

/**
 * Conversations per match transaction: each costs a statement of its own (claims are made one
 * at a time), so a fifth of the batch size keeps the transaction as short as a key-walk batch.
 */
const matchBatch = (batchSize: number) => Math.max(1, Math.floor(batchSize / 5))

export const matchConversations: Step = {
  name: 'match',
  async estimate(client) {
    const { rows } = await client.query(`select count(*)::int as n from ${CONVERSATIONS} where state = 'candidate'`)
    return rows[0].n
  },
  async runBatch(ctx, cursor) {
    const after = afterTime(cursor, 2)
    // Only conversations whose text is some unclaimed call's prompt can match: the rest
    // (every ordinary conversation start) is passed over by index.
    const { rows } = await ctx.client.query<{ id: string; ts: string; first_id: string }>(
      `select conversation_id::text as id, ${cursorTime('first_ts')} as ts, first_request_id::text as first_id
       from ${CONVERSATIONS} c
       where state = 'candidate' and ${after.sql}
         and exists (select 1 from ${CALLS} k where k.prompt_md5 = c.text_md5 and not k.claimed)
       order by first_ts, first_request_id limit $1`,
      [matchBatch(ctx.settings.batchSize), ...after.params],
    )
    let matched = 0
    // One at a time, in order: each claim changes what the next conversation may take.
    for (const row of rows) {
      const { rows: done } = await ctx.client.query<{ n: number }>(
        `with c as (select * from ${CONVERSATIONS} where conversation_id = $1),
         pick as (
           select k.parent_request_id, k.position, k.parent_conversation_id
           from ${CALLS} k, c
           where not k.claimed and k.prompt_md5 = c.text_md5 and k.prompt = c.text
             and k.parent_ts <= c.first_ts
             and c.first_ts <= k.parent_end + $2::bigint * interval '1 millisecond'
             and k.parent_conversation_id <> c.conversation_id
           order by k.parent_ts desc, k.parent_request_id, k.position
           limit 1),
         claim as (
           update ${CALLS} k set claimed = true from pick
           where k.parent_request_id = pick.parent_request_id and k.position = pick.position
           returning k.parent_request_id, k.position, k.parent_conversation_id),
         ins as (
           insert into ${MATCHES} (conversation_id, parent_request_id, position, parent_conversation_id, first_ts, first_request_id)
           select c.conversation_id, claim.parent_request_id, claim.position, claim.parent_conversation_id, c.first_ts, c.first_request_id
           from claim, c
           returning 1)
         select count(*)::int as n from ins`,
        [row.id, ctx.settings.subtaskWindowMs],
      )
      matched += done[0].n
    }
    const last = rows[rows.length - 1]
    const next = rows.length < matchBatch(ctx.settings.batchSize) ? null : ([last.ts, last.first_id] as TimeCursor)
    return { changed: 0, skipped: 0, examined: rows.length, cursor: next }
  },
}

export const numberBranches: Step = {
  name: 'number',
  async runBatch(ctx, cursor) {
    const after = typeof cursor === 'string' ? cursor : null
    const { rows } = await ctx.client.query<{ id: string }>(
      `select distinct parent_conversation_id as id from ${MATCHES}
       where ${after === null ? 'true' : 'parent_conversation_id > $2::uuid'}
       order by parent_conversation_id limit $1`,
      after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after],
    )
    if (rows.length) {
      await ctx.client.query(
        `with base as (
           select c.id, coalesce((
             select max(substring(a.branch_id from '^subtask_([0-9]{1,9})$')::int) from api_requests a
             where a.conversation_id = c.id and a.branch_id ~ '^subtask_[0-9]{1,9}$'), 0) as base
           from unnest($1::uuid[]) as c(id)
         ), numbered as (
           select m.conversation_id,
                  b.base + row_number() over (partition by m.parent_conversation_id order by m.first_ts, m.first_request_id) as n
           from ${MATCHES} m join base b on b.id = m.parent_conversation_id
         )
         update ${MATCHES} m set branch = 'subtask_' || numbered.n
         from numbered where m.conversation_id = numbered.conversation_id`,
        [rows.map((r) => r.id)],
      )
    }
    const next = rows.length < ctx.settings.batchSize ? null : rows[rows.length - 1].id
    return { changed: 0, skipped: 0, examined: rows.length, cursor: next }
  },
}
