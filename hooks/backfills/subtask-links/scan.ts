/**
 * Gathering steps of sub-task linking: walk the data once by key and fill the scratch tables
 * (scratch.ts) that matching needs, so that no step ever runs a correlated subquery per row
 * over api_requests (legacy 003's mistake).
 */
import type pg from 'pg'
import type { BatchContext, Cursor, Step } from '../../runner/backfill.js'
import { keyWalkStep, rangeFilter } from '../../runner/key-walk.js'
import type { RowRule } from '../../runner/row-rule.js'
import { firstMessageText } from '../../rules/subtask-text.js'
import { taskInvocations } from '../task-invocations.js'
import { CALLS, CONVERSATIONS, EXISTING } from './scratch.js'

const count = async (client: pg.ClientBase, sql: string) => (await client.query<{ n: number }>(sql)).rows[0].n

/**
 * scan-rows: per conversation, its earliest row (timestamp, then request_id), its size and
 * whether any of its rows is already linked; and every already-linked row.
 * Batches merge into the scratch row, so the result does not depend on key order.
 */
export const scanRows: Step = {
  ...keyWalkStep('scan-rows', async (ctx, after, upTo) => {
    const range = rangeFilter(after, upTo)
    await ctx.client.query(
      `insert into ${CONVERSATIONS} as t (conversation_id, first_ts, first_request_id, row_count, has_linked)
     select conversation_id,
            (array_agg(timestamp order by timestamp, request_id))[1],
            (array_agg(request_id order by timestamp, request_id))[1],
            count(*), bool_or(parent_task_request_id is not null)
     from public.api_requests where ${range.sql} and conversation_id is not null
     group by conversation_id
     on conflict (conversation_id) do update set
       first_ts = case when (excluded.first_ts, excluded.first_request_id) < (t.first_ts, t.first_request_id)
                       then excluded.first_ts else t.first_ts end,
       first_request_id = case when (excluded.first_ts, excluded.first_request_id) < (t.first_ts, t.first_request_id)
                       then excluded.first_request_id else t.first_request_id end,
       row_count = t.row_count + excluded.row_count,
       has_linked = t.has_linked or excluded.has_linked`,
      range.params,
    )
    await ctx.client.query(
      `insert into ${EXISTING} (request_id, parent_task_request_id)
     select request_id, parent_task_request_id from public.api_requests where ${range.sql} and parent_task_request_id is not null`,
      range.params,
    )
    return { changed: 0, skipped: 0 }
  }),
  // Writes only the scratch tables: a dry run keeps them for the steps and the pass after it.
  scratchOnly: true,
}

/**
 * The first message of each row of `inner` (a query with a `messages` column, the row's
 * `body->'messages'`, and its walk key `k`, kept in order), read by path: (message count or null, first message if alone). The
 * inner query computes `body->'messages'` once; repeating it here would decompress the body
 * once per use.
 */
const withFirstMessage = (columns: string, inner: string) => `
  select ${columns},
    case when jsonb_typeof(messages) = 'array' then jsonb_array_length(messages) end as n,
    case when jsonb_typeof(messages) = 'array' and jsonb_array_length(messages) = 1 then messages->0 end as first
  from (${inner}) rows_with_messages
  order by k`

/** Walk a scratch table by its uuid key; `cursor` is the last key done. */
async function nextKeys<T extends pg.QueryResultRow>(ctx: BatchContext, cursor: Cursor, sql: (where: string) => string) {
  const after = typeof cursor === 'string' ? cursor : null
  const { rows } = await ctx.client.query<T>(
    sql(after === null ? 'true' : 'k > $2::uuid'),
    after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after],
  )
  return rows
}

/**
 * conversation-texts: classify each conversation by its first row (subtasks.md step 2):
 * a candidate has a single user message, whose text is computed as the application does.
 * Conversations with an already-linked row are never candidates (step 5).
 */
export const conversationTexts: Step = {
  name: 'conversation-texts',
  scratchOnly: true,
  estimate: (client) => count(client, `select count(*)::int as n from ${CONVERSATIONS}`),
  async runBatch(ctx, cursor) {
    const rows = await nextKeys<{ id: string; has_linked: boolean; found: boolean; n: number | null; first: unknown }>(
      ctx,
      cursor,
      (where) =>
        withFirstMessage(
          'id, has_linked, found',
          `select c.k, c.conversation_id::text as id, c.has_linked, a.request_id is not null as found, a.body->'messages' as messages
           from (select conversation_id as k, * from ${CONVERSATIONS}) c
           left join public.api_requests a on a.request_id = c.first_request_id and not c.has_linked
           where ${where} order by c.k limit $1`,
        ),
    )
    let skipped = 0
    const updates = rows.map((row) => {
      if (row.has_linked) return { id: row.id, state: 'linked', text: null }
      if (!row.found) return { id: row.id, state: 'not-candidate', text: null }
      const result = firstMessageText(row.n, row.first)
      if (result.kind === 'malformed') skipped++
      return { id: row.id, state: result.kind === 'text' ? 'candidate' : result.kind, text: result.kind === 'text' ? result.text : null }
    })
    if (updates.length) {
      await ctx.client.query(
        `update ${CONVERSATIONS} c set state = v.state, text = v.text, text_md5 = md5(v.text)
         from jsonb_to_recordset($1::jsonb) as v(id uuid, state text, text text) where c.conversation_id = v.id`,
        [JSON.stringify(updates)],
      )
    }
    const next = rows.length < ctx.settings.batchSize ? null : rows[rows.length - 1].id
    return { changed: 0, skipped, examined: rows.length, cursor: next }
  },
}

/** task-invocations' rule: scan-calls sees each row's Task calls as the row pass will leave them. */
const invocations = taskInvocations.row as RowRule

/**
 * scan-calls: every Task call with a string `input.prompt`, with its parent's time window
 * and conversation (subtasks.md step 3). Elements without a string prompt are counted as
 * skipped. An element already carrying linked_conversation_id is claimed from the start.
 *
 * It runs before the row pass, so it reads each row's task_tool_invocation as that pass will
 * leave it: the column where task-invocations has nothing to do, else the value
 * task-invocations computes (its own rule's SQL and code, on the Task blocks of the response).
 * The links then go into that value in the same row version (link-rules.ts).
 */
export const scanCalls: Step = {
  ...keyWalkStep('scan-calls', async (ctx, after, upTo) => {
    const range = rangeFilter(after, upTo, 1, 'a.request_id')
    const pending = `coalesce((${invocations.pending}), false)`
    const { rows: toCompute } = await ctx.client.query<{ id: string; legacy: unknown; blocks: unknown; old: unknown }>(
      `select a.request_id::text as id, ${Object.entries(invocations.read)
        .map(([name, sql]) => `${sql} as ${name}`)
        .join(', ')}, a.task_tool_invocation as old
       from public.api_requests a where ${range.sql} and a.conversation_id is not null and ${pending}`,
      range.params,
    )
    const computed: { request_id: string; position: number; e: unknown }[] = []
    for (const row of toCompute) {
      const outcome = invocations.compute(row, null)
      const value = outcome === null ? null : outcome === 'skip' ? row.old : outcome.value
      if (!Array.isArray(value)) continue
      for (const [i, e] of value.entries()) computed.push({ request_id: row.id, position: i + 1, e })
    }
    const next = range.params.length + 1
    const { rows } = await ctx.client.query<{ skipped: number }>(
      `with effective as (
         select a.request_id, t.o::int as position, t.e
         from public.api_requests a
         cross join lateral jsonb_array_elements(
           case when jsonb_typeof(a.task_tool_invocation) = 'array' then a.task_tool_invocation else '[]'::jsonb end
         ) with ordinality t(e, o)
         where ${range.sql} and a.task_tool_invocation is not null and not ${pending}
         union all
         select c.request_id, c.position, c.e from jsonb_to_recordset($${next}::jsonb) as c(request_id uuid, position int, e jsonb)
       ), calls as (
         select f.request_id, f.position, f.e, a.timestamp, a.duration_ms, a.conversation_id
         from effective f join public.api_requests a on a.request_id = f.request_id
       ), ins as (
         insert into ${CALLS} (parent_request_id, position, call_id, prompt, prompt_md5, parent_ts, parent_end,
                               parent_conversation_id, marked, claimed)
         select request_id, position, e->>'id', e->'input'->>'prompt', md5(e->'input'->>'prompt'), timestamp,
                timestamp + coalesce(duration_ms, 0) * interval '1 millisecond', conversation_id,
                coalesce(e->'linked_conversation_id', 'null') <> 'null', coalesce(e->'linked_conversation_id', 'null') <> 'null'
         from calls where jsonb_typeof(e->'input'->'prompt') = 'string' and conversation_id is not null
         on conflict do nothing
         returning 1
       )
       select (select count(*)::int from ins) as inserted,
              (select count(*)::int from calls where jsonb_typeof(e->'input'->'prompt') is distinct from 'string') as skipped`,
      [...range.params, JSON.stringify(computed)],
    )
    return { changed: 0, skipped: rows[0].skipped }
  }),
  // Writes only the scratch tables: a dry run keeps them for the steps and the pass after it.
  scratchOnly: true,
}

/**
 * claim-existing: a call whose sub-task is already linked (by the application, or by legacy
 * 003 which marked only invocation 0) must not link a second conversation. Each existing
 * linked first row (a single user message) accounts for one call of its parent with the same
 * prompt — preferring a call already marked linked, then the lowest position.
 */
export const claimExisting: Step = {
  name: 'claim-existing',
  scratchOnly: true,
  estimate: (client) => count(client, `select count(*)::int as n from ${EXISTING}`),
  async runBatch(ctx, cursor) {
    const rows = await nextKeys<{ id: string; parent: string; n: number | null; first: unknown }>(ctx, cursor, (where) =>
      withFirstMessage(
        'id, parent',
        `select x.k, x.request_id::text as id, x.parent_task_request_id::text as parent, a.body->'messages' as messages
           from (select request_id as k, * from ${EXISTING}) x left join public.api_requests a on a.request_id = x.request_id
           where ${where} order by x.k limit $1`,
      ),
    )
    for (const row of rows) {
      const text = firstMessageText(row.n, row.first)
      if (text.kind !== 'text') continue
      await ctx.client.query(
        `update ${CALLS} set claimed = true, accounted = true
         where (parent_request_id, position) in (
           select parent_request_id, position from ${CALLS}
           where parent_request_id = $1 and prompt_md5 = md5($2) and prompt = $2 and not accounted
           order by marked desc, position limit 1)`,
        [row.parent, text.text],
      )
    }
    const next = rows.length < ctx.settings.batchSize ? null : rows[rows.length - 1].id
    return { changed: 0, skipped: 0, examined: rows.length, cursor: next }
  },
}
