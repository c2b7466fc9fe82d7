/**
 * apply: write the decided matches to api_requests (subtasks.md step 4), a few whole
 * conversations per short transaction, in first-row-time order:
 *  - every row of the sub-task conversation gets parent_task_request_id, is_subtask, the
 *    parent's conversation_id and the shared branch;
 *  - the matched element of the parent's task_tool_invocation gets linked_conversation_id =
 *    the sub-task's original conversation id.
 * Rows that already have a parent_task_request_id are never touched (step 5).
 * "changed" counts sub-task rows moved plus calls linked.
 */
import type { Step } from '../../runner/backfill.js'
import { preExisting } from '../../runner/high-water.js'
import { CONVERSATIONS, cursorTime, MATCHES } from './scratch.js'

type TimeCursor = [string, string]

export const applyMatches: Step = {
  name: 'apply',
  async estimate(client) {
    const { rows } = await client.query(`select count(*)::int as n from ${MATCHES}`)
    return rows[0].n
  },
  async runBatch(ctx, cursor) {
    const after = Array.isArray(cursor) ? (cursor as TimeCursor) : null
    const { rows } = await ctx.client.query<{ id: string; ts: string; first_id: string; row_count: number; branch: string | null }>(
      `select m.conversation_id::text as id, ${cursorTime('m.first_ts')} as ts, m.first_request_id::text as first_id, c.row_count, m.branch
       from ${MATCHES} m join ${CONVERSATIONS} c using (conversation_id)
       where ${after ? '(m.first_ts, m.first_request_id) > ($2::timestamptz, $3::uuid)' : 'true'}
       order by m.first_ts, m.first_request_id limit $1`,
      after ? [ctx.settings.batchSize, ...after] : [ctx.settings.batchSize],
    )
    if (!rows.length) return { changed: 0, skipped: 0, examined: 0, cursor: null }
    // Whole conversations only; stop once the batch holds batchSize rows (at least one conversation).
    const take: typeof rows = []
    let size = 0
    for (const row of rows) {
      if (take.length && size + row.row_count > ctx.settings.batchSize) break
      if (row.branch === null) throw new Error(`subtask-links: match for conversation ${row.id} has no branch (numbering incomplete)`)
      take.push(row)
      size += row.row_count
    }
    const ids = take.map((r) => r.id)
    // Parents first, then the sub-task rows: two statements, because a parent row could itself
    // belong to a conversation moved in the same batch and one statement cannot update a row twice.
    const parents = await ctx.client.query(
      `with v as (select * from ${MATCHES} where conversation_id = any($1::uuid[]))
       update public.api_requests a set task_tool_invocation = (
         select jsonb_agg(case when v.conversation_id is null then t.e
                               else t.e || jsonb_build_object('linked_conversation_id', v.conversation_id::text) end
                          order by t.o)
         from jsonb_array_elements(a.task_tool_invocation) with ordinality t(e, o)
         left join v on v.parent_request_id = a.request_id and v.position = t.o)
       where a.request_id in (select parent_request_id from v) and ${preExisting('a')}
       returning (select count(*)::int from v where v.parent_request_id = a.request_id) as linked`,
      [ids],
    )
    // Counted per call linked (not per parent row updated), so the total does not depend on
    // how matches happened to be split into batches.
    const callsLinked = parents.rows.reduce((sum, r) => sum + r.linked, 0)
    const moved = await ctx.client.query(
      `update public.api_requests a set parent_task_request_id = m.parent_request_id, is_subtask = true,
              conversation_id = m.parent_conversation_id, branch_id = m.branch
       from ${MATCHES} m
       where m.conversation_id = any($1::uuid[]) and a.conversation_id = m.conversation_id and a.parent_task_request_id is null
         and ${preExisting('a')}`,
      [ids],
    )
    const last = take[take.length - 1]
    const finished = take.length === rows.length && rows.length < ctx.settings.batchSize
    return {
      changed: callsLinked + (moved.rowCount ?? 0),
      skipped: 0,
      examined: take.length,
      cursor: finished ? null : ([last.ts, last.first_id] as TimeCursor),
    }
  },
}
