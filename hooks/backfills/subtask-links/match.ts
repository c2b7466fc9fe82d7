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
import type { Step } from '../../runner/backfill.js'
import { LEDGER_SCHEMA } from '../../runner/ledger.js'
import { CALLS, CONVERSATIONS, cursorTime, MATCHES } from './scratch.js'

/** Cursor over (first_ts, first_request_id); the timestamp is kept as text to keep microseconds. */
type TimeCursor = [string, string]

const afterTime = (cursor: unknown, tsParam: number) =>
  Array.isArray(cursor)
    ? { sql: `(first_ts, first_request_id) > ($${tsParam}::timestamptz, $${tsParam + 1}::uuid)`, params: cursor as TimeCursor }
    : { sql: 'true', params: [] as string[] }

/**
 * The greedy claim loop, server-side: one call per batch instead of one round trip per
 * conversation. For each conversation of `ids`, in the given order (each claim changes what
 * the next conversation may take): pick the nearest unclaimed call as described above, claim
 * it, record the match. Created (or replaced) by every match batch, in its transaction, so a
 * run resumed at this step by newer code gets the newer function; dropped with the scratch
 * tables.
 */
export const MATCH_FUNCTION = `${LEDGER_SCHEMA}.subtask_match_in_order`

const CREATE_MATCH_FUNCTION = `create or replace function ${MATCH_FUNCTION}(ids uuid[], window_ms bigint) returns integer
language plpgsql as $fn$
declare
  c record;
  pick record;
  matched integer := 0;
begin
  for c in
    select s.* from unnest(ids) with ordinality as u(id, o)
    join ${CONVERSATIONS} s on s.conversation_id = u.id
    order by u.o
  loop
    select k.parent_request_id, k.position, k.parent_conversation_id into pick
    from ${CALLS} k
    where not k.claimed and k.prompt_md5 = c.text_md5 and (c.text is null or k.prompt = c.text)
      and k.parent_ts <= c.first_ts
      and c.first_ts <= k.parent_end + window_ms * interval '1 millisecond'
      and k.parent_conversation_id <> c.conversation_id
    order by k.parent_ts desc, k.parent_request_id, k.position
    limit 1;
    continue when not found;
    update ${CALLS} set claimed = true where parent_request_id = pick.parent_request_id and position = pick.position;
    insert into ${MATCHES} (conversation_id, parent_request_id, position, parent_conversation_id, first_ts, first_request_id)
    values (c.conversation_id, pick.parent_request_id, pick.position, pick.parent_conversation_id, c.first_ts, c.first_request_id);
    matched := matched + 1;
  end loop;
  return matched;
end
$fn$`

export const matchConversations: Step = {
  name: 'match',
  scratchOnly: true,
  async estimate(client) {
    const { rows } = await client.query(`select count(*)::int as n from ${CONVERSATIONS} where state = 'candidate'`)
    return rows[0].n
  },
  async runBatch(ctx, cursor) {
    const after = afterTime(cursor, 2)
    // Only conversations whose text is some unclaimed call's prompt can match: the rest
    // (every ordinary conversation start) is passed over by index. The probe is a scalar
    // subquery with LIMIT 1, one index probe per conversation: as EXISTS the planner may
    // hash all of CALLS on every batch when the fresh scratch tables are not analyzed yet.
    const { rows } = await ctx.client.query<{ id: string; ts: string; first_id: string }>(
      `select conversation_id::text as id, ${cursorTime('first_ts')} as ts, first_request_id::text as first_id
       from ${CONVERSATIONS} c
       where state = 'candidate' and ${after.sql}
         and (select true from ${CALLS} k where k.prompt_md5 = c.text_md5 and not k.claimed limit 1)
       order by first_ts, first_request_id limit $1`,
      [ctx.settings.batchSize, ...after.params],
    )
    if (rows.length) {
      await ctx.client.query(CREATE_MATCH_FUNCTION)
      await ctx.client.query(`select ${MATCH_FUNCTION}($1::uuid[], $2::bigint)`, [rows.map((r) => r.id), ctx.settings.subtaskWindowMs])
    }
    const last = rows[rows.length - 1]
    const next = rows.length < ctx.settings.batchSize ? null : ([last.ts, last.first_id] as TimeCursor)
    return { changed: 0, skipped: 0, examined: rows.length, cursor: next }
  },
}

export const numberBranches: Step = {
  name: 'number',
  scratchOnly: true,
  async runBatch(ctx, cursor) {
    const after = typeof cursor === 'string' ? cursor : null
    // A batch is the next `batchSize` matches in parent order (not the next distinct parents):
    // an ordered index scan with a limit whatever the table's statistics. The matches table is
    // filled moments before and autovacuum may not have analyzed it yet; `select distinct`
    // then hashes every remaining match on each batch, a cost per batch that does not shrink
    // with the batch (100,000 matches: 24 s instead of 3 s). A parent whose matches straddle
    // the batch's end is numbered whole here; the next batch starts after it.
    const { rows } = await ctx.client.query<{ id: string }>(
      `select parent_conversation_id::text as id from ${MATCHES}
       where ${after === null ? 'true' : 'parent_conversation_id > $2::uuid'}
       order by parent_conversation_id limit $1`,
      after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after],
    )
    const parents = [...new Set(rows.map((r) => r.id))]
    if (parents.length) {
      // The `like` is implied by the pattern; it is there so that the planner can use the
      // schema's partial index idx_subtask_seq (branch_id like 'subtask_%'), which holds only
      // sub-task rows, instead of visiting every row of a large parent conversation. The
      // updated rows are named by parent as well, so that they too are found by index.
      await ctx.client.query(
        `with base as (
           select c.id, coalesce((
             select max(substring(a.branch_id from '^subtask_([0-9]{1,9})$')::int) from public.api_requests a
             where a.conversation_id = c.id and a.branch_id like 'subtask_%' and a.branch_id ~ '^subtask_[0-9]{1,9}$'), 0) as base
           from unnest($1::uuid[]) as c(id)
         ), numbered as (
           select m.conversation_id,
                  b.base + row_number() over (partition by m.parent_conversation_id order by m.first_ts, m.first_request_id) as n
           from ${MATCHES} m join base b on b.id = m.parent_conversation_id
           where m.parent_conversation_id = any($1::uuid[])
         )
         update ${MATCHES} m set branch = 'subtask_' || numbered.n
         from numbered where m.conversation_id = numbered.conversation_id and m.parent_conversation_id = any($1::uuid[])`,
        [parents],
      )
    }
    const next = rows.length < ctx.settings.batchSize ? null : parents[parents.length - 1]
    return { changed: 0, skipped: 0, examined: rows.length, cursor: next }
  },
}
