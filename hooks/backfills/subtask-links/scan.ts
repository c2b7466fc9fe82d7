/**
 * Gathering steps of sub-task linking: fill the scratch tables (scratch.ts) that matching
 * needs, reading api_requests once for each purpose, so that no step ever runs a correlated
 * subquery per row over it (legacy 003's mistake). scan-links and scan-conversations read
 * through the schema's indexes; scan-calls walks every row by key (it must see every Task
 * call), keeping what it read for the walk; conversation-texts reads one row per conversation.
 */
import type pg from 'pg'
import type { BatchContext, Cursor, Step } from '../../runner/backfill.js'
import { keyWalkStep, rangeFilter } from '../../runner/key-walk.js'
import type { RowRule } from '../../runner/row-rule.js'
import { firstMessageText } from '../../rules/subtask-text.js'
import { COMPLETE_SEEN_SCAN, SEEN_BLOCKS, TASK_BLOCKS_FROM_RESPONSE, taskInvocations } from '../task-invocations.js'
import { CALLS, CONVERSATIONS, EXISTING, PROMPTS } from './scratch.js'

const count = async (client: pg.ClientBase, sql: string) => (await client.query<{ n: number }>(sql)).rows[0].n

/**
 * scan-links: every row already linked (a parent_task_request_id, set by the application or
 * legacy 003), with its conversation. Read through the index on parent_task_request_id, so
 * only linked rows are visited. A batch takes whole parents (every row up to the last parent
 * of the next `batchSize` linked rows), so the cursor — the last parent done — never splits one.
 */
export const scanLinks: Step = {
  name: 'scan-links',
  scratchOnly: true,
  estimate: (client) =>
    count(
      client,
      `select coalesce(round(reltuples * (1 - coalesce((select null_frac from pg_stats where schemaname = 'public'
         and tablename = 'api_requests' and attname = 'parent_task_request_id'), 0)))::int, 0) as n
       from pg_class where oid = 'public.api_requests'::regclass`,
    ),
  async runBatch(ctx, cursor) {
    const after = typeof cursor === 'string' ? cursor : null
    const { rows } = await ctx.client.query<{ n: number; last: string | null }>(
      `with next_parents as (
         select parent_task_request_id as p from public.api_requests
         where parent_task_request_id is not null ${after === null ? '' : 'and parent_task_request_id > $2::uuid'}
         order by parent_task_request_id limit $1
       ), bound as (select count(*)::int as n, (select p from next_parents order by p desc limit 1) as last from next_parents), ins as (
         insert into ${EXISTING} (request_id, parent_task_request_id, conversation_id)
         select a.request_id, a.parent_task_request_id, a.conversation_id from public.api_requests a, bound
         where a.parent_task_request_id <= bound.last ${after === null ? '' : 'and a.parent_task_request_id > $2::uuid'}
         on conflict do nothing
         returning 1
       )
       select bound.n, bound.last::text as last, (select count(*) from ins) as inserted from bound`,
      after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after],
    )
    const { n, last } = rows[0]
    return { changed: 0, skipped: 0, examined: n, cursor: n < ctx.settings.batchSize || last === null ? null : last }
  },
}

/**
 * scan-conversations: per conversation, its earliest row (timestamp, then request_id) and
 * whether any of its rows is already linked (scan-links found it). Driven by the conversation
 * indexes of the schema — the next `batchSize` conversation ids, then each one's first row —
 * so it reads index pages in order rather than every row's heap tuple by primary key.
 * The cursor is the last conversation done.
 */
export const scanConversations: Step = {
  name: 'scan-conversations',
  scratchOnly: true,
  estimate: (client) =>
    count(
      client,
      `select coalesce(round(case when s.n_distinct < 0 then -s.n_distinct * c.reltuples else s.n_distinct end)::int, c.reltuples::int, 0) as n
       from pg_class c left join pg_stats s on s.schemaname = 'public' and s.tablename = 'api_requests' and s.attname = 'conversation_id'
       where c.oid = 'public.api_requests'::regclass`,
    ),
  async runBatch(ctx, cursor) {
    const after = typeof cursor === 'string' ? cursor : null
    const { rows } = await ctx.client.query<{ n: number; last: string | null }>(
      `with ids as (
         select distinct conversation_id as id from public.api_requests
         where conversation_id is not null ${after === null ? '' : 'and conversation_id > $2::uuid'}
         order by conversation_id limit $1
       ), ins as (
         insert into ${CONVERSATIONS} (conversation_id, first_ts, first_request_id, first_ctid, has_linked)
         select ids.id, f.timestamp, f.request_id, f.ctid, exists (select 1 from ${EXISTING} e where e.conversation_id = ids.id)
         from ids cross join lateral (
           select a.timestamp, a.request_id, a.ctid from public.api_requests a
           where a.conversation_id = ids.id order by a.timestamp, a.request_id limit 1) f
         on conflict (conversation_id) do nothing
         returning 1
       )
       select (select count(*)::int from ids) as n, (select id::text from ids order by id desc limit 1) as last, (select count(*) from ins) as inserted`,
      after === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, after],
    )
    const { n, last } = rows[0]
    return { changed: 0, skipped: 0, examined: n, cursor: n < ctx.settings.batchSize || last === null ? null : last }
  },
}

/**
 * The first message of each row of `inner` (a query with a `messages` column, the row's
 * `body->'messages'`, and its walk key `k`, kept in order), read by path: (message count or null, first message if alone). The
 * inner query computes `body->'messages'` once; repeating it here would decompress the body
 * once per use.
 */
const withFirstMessage = (columns: string, inner: string, orderBy = 'k') => `
  select ${columns},
    case when jsonb_typeof(messages) = 'array' then jsonb_array_length(messages) end as n,
    case when jsonb_typeof(messages) = 'array' and jsonb_array_length(messages) = 1 then messages->0 end as first
  from (${inner}) rows_with_messages
  order by ${orderBy}`

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
 * a candidate has a single user message, whose text is computed as the application does,
 * and equals some Task call's prompt (scan-calls ran before). Conversations with an
 * already-linked row are never candidates (step 5).
 */
export const conversationTexts: Step = {
  name: 'conversation-texts',
  scratchOnly: true,
  estimate: (client) => count(client, `select count(*)::int as n from ${CONVERSATIONS}`),
  async runBatch(ctx, cursor) {
    // In the heap's order, so that the first rows' pages (and their bodies' TOAST) are read
    // nearly in sequence rather than at random, which matters on a table larger than memory.
    // The cursor is the last (first_ctid, conversation_id) done, as "tid uuid".
    const [afterTid, afterId] = typeof cursor === 'string' ? cursor.split(' ') : [null, null]
    const { rows } = await ctx.client.query<{
      id: string
      tid: string
      has_linked: boolean
      found: boolean
      n: number | null
      first: unknown
    }>(
      withFirstMessage(
        'id, tid, has_linked, found',
        `select c.conversation_id::text as id, c.first_ctid, c.first_ctid::text as tid, c.conversation_id, c.has_linked,
                a.found is not null as found, a.messages
         from (select * from ${CONVERSATIONS}
               where ${afterTid === null ? 'true' : '(first_ctid, conversation_id) > ($2::tid, $3::uuid)'}
               order by first_ctid, conversation_id limit $1) c
         -- One lookup by key per conversation, whatever the scratch table's statistics say:
         -- written as a plain join, the first batches at 1M rows, before autovacuum had
         -- analysed the fresh scratch table, took 500-770 ms whatever their size.
         left join lateral (
           select true as found, a.body->'messages' as messages from public.api_requests a
           where a.request_id = c.first_request_id and not c.has_linked limit 1) a on true`,
        'first_ctid, conversation_id',
      ),
      afterTid === null ? [ctx.settings.batchSize] : [ctx.settings.batchSize, afterTid, afterId],
    )
    let skipped = 0
    const texts: { id: string; text: string }[] = []
    for (const row of rows) {
      if (row.has_linked || !row.found) continue
      const result = firstMessageText(row.n, row.first)
      if (result.kind === 'malformed') skipped++
      if (result.kind === 'text') texts.push({ id: row.id, text: result.text })
    }
    if (texts.length) {
      // Only candidates are written: a conversation whose text is some unclaimed Task call's
      // prompt (every call is scanned by now; a claimed call already carries a link and is
      // never matched; the probe uses CALLS' index on unclaimed calls). Every other
      // conversation keeps state null, and no row version is written for it: at 1M rows,
      // updating every conversation cost as much as reading them.
      // A candidate keeps only its text's md5 when every call with that md5 has this very text
      // as its prompt, so that matching by md5 is exact; the text itself only when another
      // prompt shares the md5 (PROMPTS says so by key).
      await ctx.client.query(
        // The probe of CALLS is a scalar subquery with LIMIT 1, so that it stays one index probe
        // per conversation: written as EXISTS in the WHERE clause, which the planner may turn
        // into a join over all of CALLS, the step took twice as long at 1M rows.
        `update ${CONVERSATIONS} c set state = 'candidate', text_md5 = h.md5,
           text = case when (select p.shared from ${PROMPTS} p where p.prompt_md5 = h.md5) then v.text end
         from jsonb_to_recordset($1::jsonb) as v(id uuid, text text)
         cross join lateral (select md5(v.text) as md5) h
         where c.conversation_id = v.id
           and (select true from ${CALLS} x where x.prompt_md5 = h.md5 and x.prompt = v.text and not x.claimed limit 1)`,
        [JSON.stringify(texts)],
      )
    }
    const last = rows.at(-1)
    const next = rows.length < ctx.settings.batchSize || !last ? null : `${last.tid} ${last.id}`
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
const scanRanges = keyWalkStep('scan-calls', async (ctx, after, upTo) => {
  const range = rangeFilter(after, upTo, 1, 'a.request_id')
  // One visit per row. The blocks of pending rows that have any are kept for the walk
  // (SEEN_BLOCKS). Only rows that can hold a call leave the database: a row whose value
  // task-invocations will compute (pending) when it is legacy-shaped or its response has
  // Task blocks; any other row when its task_tool_invocation is an array.
  const { rows } = await ctx.client.query<{ id: string; pending: boolean; legacy: unknown; blocks: unknown; old: unknown }>(
    `with r as (
       select a.request_id, p.pending, case when p.pending then ${invocations.read.legacy} end as legacy,
              case when p.pending then ${TASK_BLOCKS_FROM_RESPONSE} end as blocks, a.task_tool_invocation as old
       from public.api_requests a cross join lateral (select coalesce((${invocations.pending}), false) as pending) p
       where ${range.sql} and a.conversation_id is not null
     ), seen as (
       insert into ${SEEN_BLOCKS} (request_id, blocks)
       select request_id, blocks from r where pending and blocks is not null and blocks <> '[]'::jsonb
       on conflict (request_id) do nothing
     )
     select request_id::text as id, pending, legacy, blocks, old from r
     where case when r.pending then r.legacy is true or (jsonb_typeof(r.blocks) = 'array' and r.blocks <> '[]'::jsonb)
                else jsonb_typeof(r.old) = 'array' end`,
    range.params,
  )
  const calls: { request_id: string; position: number; e: unknown }[] = []
  for (const row of rows) {
    let value: unknown = row.old
    if (row.pending) {
      const outcome = invocations.compute(row, null)
      value = outcome === null ? null : outcome === 'skip' ? row.old : outcome.value
    }
    if (!Array.isArray(value)) continue
    for (const [i, e] of value.entries()) calls.push({ request_id: row.id, position: i + 1, e })
  }
  if (calls.length === 0) return { changed: 0, skipped: 0 }
  const { rows: counted } = await ctx.client.query<{ skipped: number }>(
    `with calls as (
         select c.request_id, c.position, c.e, a.timestamp, a.duration_ms, a.conversation_id
         from jsonb_to_recordset($1::jsonb) as c(request_id uuid, position int, e jsonb)
         join public.api_requests a on a.request_id = c.request_id
       ), ins as (
         insert into ${CALLS} (parent_request_id, position, call_id, prompt, prompt_md5, parent_ts, parent_end,
                               parent_conversation_id, marked, claimed)
         select request_id, position, e->>'id', e->'input'->>'prompt', md5(e->'input'->>'prompt'), timestamp,
                timestamp + coalesce(duration_ms, 0) * interval '1 millisecond', conversation_id,
                coalesce(e->'linked_conversation_id', 'null') <> 'null', coalesce(e->'linked_conversation_id', 'null') <> 'null'
         from calls where jsonb_typeof(e->'input'->'prompt') = 'string' and conversation_id is not null
         on conflict do nothing
         returning 1
       ), prompts as (
         -- Per md5 of this batch's prompts: is it shared (another prompt has it, in this batch
         -- or before)? Grouped first: one upsert may not touch a row twice.
         insert into ${PROMPTS} (prompt_md5, prompt, shared)
         select md5(prompt), min(prompt), count(distinct prompt) > 1
         from (select e->'input'->>'prompt' as prompt from calls
               where jsonb_typeof(e->'input'->'prompt') = 'string' and conversation_id is not null) p
         group by md5(prompt)
         on conflict (prompt_md5) do update set shared = true
         where not ${PROMPTS}.shared and (excluded.shared or ${PROMPTS}.prompt <> excluded.prompt)
       )
       select (select count(*)::int from ins) as inserted,
              (select count(*)::int from calls where jsonb_typeof(e->'input'->'prompt') is distinct from 'string') as skipped`,
    [JSON.stringify(calls)],
  )
  return { changed: 0, skipped: counted[0].skipped }
})

export const scanCalls: Step = {
  ...scanRanges,
  async runBatch(ctx, cursor) {
    const result = await scanRanges.runBatch(ctx, cursor)
    // Every key is scanned: from now on the walk may use the blocks seen (same transaction).
    if (result.cursor === null) await ctx.client.query(COMPLETE_SEEN_SCAN)
    return result
  },
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
