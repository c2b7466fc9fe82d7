/**
 * Fill a database (already migrated by the real chain) with N realistic api_requests rows.
 *
 * Fastest way found without COPY: the plan (plan.ts: a few numbers per row) goes to a scratch
 * table in one multi-row INSERT … SELECT FROM unnest($1::int[], …) per 20k rows; then
 * `INSERT INTO api_requests SELECT … FROM bench.plan` builds the bodies server-side
 * (jsonb_build_object / jsonb_agg over slices of a 256 KB corpus), in chunks of 2,000 rows, on
 * two connections at once (one per core). Nothing crosses the wire but the plan. Building the
 * JSON as text and casting it once measured the same; what dominates is the TOAST compression
 * (pglz) of ~20 KB bodies and the 27 indexes, which any loading method pays: about 1,500 rows/s
 * on two cores (100k rows ≈ 70 s, 1M ≈ 11 min).
 *
 * The rows look like data written before the backfills existed: task_tool_invocation,
 * parent_task_request_id, parent_request_id and system_hash are NULL, every conversation
 * (sub-tasks included) has its own conversation_id and branch 'main'.
 */
import type pg from 'pg'
import { buildCorpus, buildPlan, CORPUS_SPAN, type Plan } from './plan.js'
import { openClient } from '../lib/connection.js'

export interface GenerateResult {
  rows: number
  ms: number
  conversations: number
  subtaskConversations: number
  taskCalls: number
  /** Average uncompressed body size (bytes of its JSON text) and on-disk table size. */
  avgBodyBytes: number
  minBodyBytes: number
  maxBodyBytes: number
  tableBytes: number
}

const PLAN_BATCH = 20_000
const INSERT_CHUNK = 2_000
const WORKERS = 2

/** Inlinable SQL helpers (single-expression SQL functions are inlined by the planner). */
const HELPERS = [
  `create schema bench`,
  `create table bench.plan (
     n int primary key, conv int, pos int, sub bool, ts timestamptz, dur int, train int, sys int, v int, model int,
     msgs int, msg_len int, tasks int, other_tool bool, parent_n int, parent_j int, style int, has_response bool)`,
  // All helpers are STABLE: a function declared IMMUTABLE that calls a stable one (to_char,
  // convert_from) would not be inlined, and would run as a separate SQL call every time.
  // A slice of the corpus. The corpus is bytea, because substr() on UTF-8 text counts
  // characters from the start (1 ms per call on 256 KB); bytea slicing is O(1). It is ASCII.
  `create function bench.cut(c bytea, off int, len int) returns text language sql stable
     as $$ select convert_from(substring(c from off for len), 'UTF8') $$`,
  // A pseudo-random offset into the corpus, 1-based, below CORPUS_SPAN.
  `create function bench.off(a bigint, b bigint) returns int language sql stable
     as $$ select 1 + ((a * 1103515245 + b * 12345 + 4242) % ${CORPUS_SPAN})::int $$`,
  // The prompt of Task call j of row n: the parent's tool_use input and the sub-task's first message.
  `create function bench.prompt(c bytea, n int, j int) returns text language sql stable
     as $$ select 'Search the repository for ' || ltrim(bench.cut(c, bench.off(n, j), 150 + ((n * 7 + j * 13) % 1400)))
                  || '. Report the relevant file paths and a short summary of what you found.' $$`,
  // Guideline text variant v (length must match plan.ts guidelinesLength).
  `create function bench.guidelines(c bytea, v int) returns text language sql stable
     as $$ select bench.cut(c, bench.off(v, 1), 3000 + ((v * 1013) % 5000)) $$`,
  `create function bench.env(conv int, ts timestamptz) returns text language sql stable
     as $$ select E'<env>\\nWorking directory: /home/dev/projects/repo-' || (conv % 23)
                  || E'\\nIs directory a git repo: Yes\\nPlatform: linux\\nOS Version: Linux 6.8.0-45-generic\\nToday''s date: '
                  || to_char(ts at time zone 'UTC', 'YYYY-MM-DD') || E'\\n</env>' $$`,
  `create function bench.git_status(conv int) returns text language sql stable
     as $$ select E'gitStatus: This is the git status at the start of the conversation. Note that this status is a snapshot in time, and will not update during the conversation.\\nCurrent branch: feature/task-'
                  || (conv % 500) || E'\\n\\nMain branch (you will usually use this for PRs): main\\n\\nStatus:\\nM src/module_'
                  || (conv % 37) || E'.ts\\n?? scratch/notes_' || (conv % 11) || E'.md\\n\\nRecent commits:\\n'
                  || substr(md5(conv::text), 1, 7) || E' Fix flaky test in the parser\\n'
                  || substr(md5((conv + 1)::text), 1, 7) || E' Add retries to the uploader\\n' $$`,
]

const CLI = 'You are an interactive CLI tool that helps users with software engineering tasks'
const CACHE = `'{"type":"ephemeral"}'::jsonb`

/** body.system by kind (plan.ts SystemKind); NULL for Absent (the key is removed afterwards). */
const SYSTEM_SQL = `case p.sys
  when 0 then jsonb_build_array(
    jsonb_build_object('type', 'text', 'text', 'You are Claude Code, Anthropic''s official CLI for Claude.', 'cache_control', ${CACHE}),
    jsonb_build_object('type', 'text', 'text', bench.guidelines(k.c, p.v) || E'\\n\\n' || bench.env(p.conv, p.ts) || E'\\n\\n' || bench.git_status(p.conv),
                       'cache_control', ${CACHE}))
  when 1 then jsonb_build_array(
    jsonb_build_object('type', 'text', 'text', '${CLI}. Use the instructions below and the tools available to you to assist the user.'
                       || E'\\n\\n' || bench.guidelines(k.c, p.v) || E'\\n\\n' || bench.env(p.conv, p.ts), 'cache_control', ${CACHE}),
    jsonb_build_object('type', 'text', 'text', bench.git_status(p.conv)))
  when 2 then to_jsonb('You are a meticulous code review agent. Follow the team conventions below.' || E'\\n\\n' || bench.guidelines(k.c, p.v)
                       || E'\\n<system-reminder>\\nThe user opened src/module_' || (p.conv % 37) || E'.ts in the IDE.\\n</system-reminder>\\n\\n'
                       || bench.env(p.conv, p.ts) || E'\\n\\n' || bench.git_status(p.conv))
  when 3 then to_jsonb(E'\\n  ${CLI}. ' || bench.guidelines(k.c, p.v) || E'\\n\\n' || bench.git_status(p.conv))
  when 4 then null
  when 5 then to_jsonb(''::text)
  when 6 then jsonb_build_array(
    jsonb_build_object('type', 'text', 'text', replace(bench.guidelines(k.c, p.v), E'\\n', E'\\r\\n') || E'\\r\\n\\r\\n' || bench.git_status(p.conv)),
    jsonb_build_object('type', 'text', 'text', '', 'cache_control', ${CACHE}))
  else to_jsonb('You are an agent for Claude Code, Anthropic''s official CLI for Claude. Given the user''s message, you should use the tools available to complete the task.'
                || E'\\n\\n' || bench.guidelines(k.c, p.v) || E'\\n\\n' || bench.env(p.conv, p.ts) || E'\\n\\n' || bench.git_status(p.conv))
end`

/** The first message: the user's opening prompt, or (sub-tasks) the Task prompt in one of three shapes. */
const FIRST_MESSAGE_SQL = `case when not p.sub then jsonb_build_object('role', 'user', 'content', bench.cut(k.c, bench.off(p.conv, 100), p.msg_len))
  when p.style = 0 then jsonb_build_object('role', 'user', 'content', bench.prompt(k.c, p.parent_n, p.parent_j))
  when p.style = 1 then jsonb_build_object('role', 'user', 'content', jsonb_build_array(
    jsonb_build_object('type', 'text', 'text', bench.prompt(k.c, p.parent_n, p.parent_j))))
  else jsonb_build_object('role', 'user', 'content', jsonb_build_array(
    jsonb_build_object('type', 'text', 'text', bench.prompt(k.c, p.parent_n, p.parent_j)),
    jsonb_build_object('type', 'text', 'text', E'<system-reminder>\\nThis is a reminder that your todo list is currently empty. DO NOT mention this to the user explicitly.\\n</system-reminder>')))
end`

/** The history: message i of the conversation is the same in every request of it. */
const MESSAGES_SQL = `(select jsonb_agg(case
    when i = 0 then ${FIRST_MESSAGE_SQL}
    when i % 2 = 1 then jsonb_build_object('role', 'assistant', 'content', jsonb_build_array(
      jsonb_build_object('type', 'text', 'text', bench.cut(k.c, bench.off(p.conv, 100 + i), p.msg_len / 4)),
      jsonb_build_object('type', 'tool_use', 'id', 'toolu_' || substr(md5(p.conv || ':' || i), 1, 24),
                         'name', (array['Bash', 'Read', 'Grep', 'Edit'])[1 + i % 4],
                         'input', jsonb_build_object('command', 'rg -n "' || bench.cut(k.c, bench.off(p.conv, 300 + i), 24) || '" src',
                                                     'description', 'Search the sources'))))
    else jsonb_build_object('role', 'user', 'content', jsonb_build_array(jsonb_build_object(
      'type', 'tool_result', 'tool_use_id', 'toolu_' || substr(md5(p.conv || ':' || (i - 1)), 1, 24),
      'content', bench.cut(k.c, bench.off(p.conv, 100 + i), p.msg_len))))
  end order by i) from generate_series(0, p.msgs - 1) as i)`

/** The response: text, then the Task calls (if any), then sometimes another tool call. */
const RESPONSE_SQL = `case when p.has_response then jsonb_build_object(
    'id', 'msg_' || substr(md5('resp' || p.n), 1, 24), 'type', 'message', 'role', 'assistant',
    'model', (array['claude-sonnet-4-20250514', 'claude-opus-4-1-20250805', 'claude-3-5-haiku-20241022'])[p.model + 1],
    'content', jsonb_build_array(jsonb_build_object('type', 'text', 'text', bench.cut(k.c, bench.off(p.n, 7), 200 + p.n % 1800)))
      || coalesce((select jsonb_agg(jsonb_build_object(
           'type', 'tool_use', 'id', 'toolu_' || substr(md5('task' || p.n || ':' || j), 1, 24), 'name', 'Task',
           'input', jsonb_build_object('description', 'Sub-task ' || j, 'prompt', bench.prompt(k.c, p.n, j), 'subagent_type', 'general-purpose'))
           order by j) from generate_series(1, p.tasks) as j), '[]'::jsonb)
      || case when p.other_tool then jsonb_build_array(jsonb_build_object(
           'type', 'tool_use', 'id', 'toolu_' || substr(md5('read' || p.n), 1, 24), 'name', 'Read',
           'input', jsonb_build_object('file_path', '/home/dev/projects/repo-' || (p.conv % 23) || '/src/module_' || (p.n % 37) || '.ts')))
         else '[]'::jsonb end,
    'stop_reason', case when p.tasks > 0 or p.other_tool then 'tool_use' else 'end_turn' end, 'stop_sequence', null,
    'usage', jsonb_build_object('input_tokens', 4 + p.n % 50, 'output_tokens', 100 + p.n % 900,
                                'cache_creation_input_tokens', p.n % 3000, 'cache_read_input_tokens', 1000 * p.msgs))
  end`

const INSERT_SQL = `insert into api_requests (
    request_id, "timestamp", train_id, account_id, method, path, headers, body, request_type, api_key_hash, model,
    response_status, response_headers, response_body, response_streaming, duration_ms, first_token_ms,
    input_tokens, output_tokens, total_tokens, cache_creation_input_tokens, cache_read_input_tokens, usage_data, tool_call_count,
    error, current_message_hash, parent_message_hash, conversation_id, branch_id, message_count, created_at)
  select
    md5('request' || p.n)::uuid, p.ts,
    (array['train-alpha', 'train-bravo', 'train-charlie', 'train-delta', 'train-echo', 'train-foxtrot'])[p.train + 1],
    case when p.train < 2 then 'acc_' || p.train end,
    'POST', '/v1/messages',
    jsonb_build_object('content-type', 'application/json', 'anthropic-version', '2023-06-01', 'user-agent', 'claude-cli/1.0.' || (p.conv % 90)),
    case when p.sys = 4 then b.body - 'system' else b.body end,
    'inference', substr(md5('key' || p.train), 1, 40),
    (array['claude-sonnet-4-20250514', 'claude-opus-4-1-20250805', 'claude-3-5-haiku-20241022'])[p.model + 1],
    case when p.has_response then 200 else 529 end,
    case when p.has_response then '{"content-type": "text/event-stream", "request-id": "req_bench"}'::jsonb end,
    r.response, true, p.dur, 300 + p.dur % 1500,
    4 + p.n % 50, 100 + p.n % 900, 104 + p.n % 50 + p.n % 900, p.n % 3000, 1000 * p.msgs,
    r.response -> 'usage', p.tasks + p.other_tool::int,
    case when not p.has_response then 'Overloaded' end,
    encode(sha256(convert_to('c' || p.conv || ':' || p.pos, 'UTF8')), 'hex'),
    case when p.pos > 0 then encode(sha256(convert_to('c' || p.conv || ':' || (p.pos - 1), 'UTF8')), 'hex') end,
    md5('conversation' || p.conv)::uuid, 'main', p.msgs, p.ts
  from bench.plan p
  -- The corpus is a bind parameter: one in-memory copy that every reference shares. (Read from
  -- a table it would be detoasted again at every reference: 100x slower.)
  cross join (select $3::bytea as c) k
  cross join lateral (select jsonb_build_object(
      'model', (array['claude-sonnet-4-20250514', 'claude-opus-4-1-20250805', 'claude-3-5-haiku-20241022'])[p.model + 1],
      'max_tokens', 32000, 'stream', true, 'temperature', 1,
      'system', ${SYSTEM_SQL},
      'messages', ${MESSAGES_SQL},
      'metadata', jsonb_build_object('user_id', 'user_' || md5('u' || p.train) || '_account__session_' || md5('s' || p.conv))) as body) b
  cross join lateral (select ${RESPONSE_SQL} as response) r
  where p.n between $1 and $2`

async function shipPlan(client: pg.ClientBase, plan: Plan): Promise<void> {
  for (let start = 0; start < plan.rows; start += PLAN_BATCH) {
    const end = Math.min(plan.rows, start + PLAN_BATCH)
    const ints = (a: Int32Array | Uint8Array) => Array.from(a.subarray(start, end))
    const n = Array.from({ length: end - start }, (_, i) => start + i + 1)
    await client.query(
      `insert into bench.plan
       select n, conv, pos, sub, to_timestamp(ts / 1000.0), dur, train, sys, v, model, msgs, msg_len, tasks,
              other_tool, parent_n, parent_j, style, has_response
       from unnest($1::int[], $2::int[], $3::int[], $4::bool[], $5::float8[], $6::int[], $7::int[], $8::int[], $9::int[],
                   $10::int[], $11::int[], $12::int[], $13::int[], $14::bool[], $15::int[], $16::int[], $17::int[], $18::bool[])
         as u(n, conv, pos, sub, ts, dur, train, sys, v, model, msgs, msg_len, tasks, other_tool, parent_n, parent_j, style, has_response)`,
      [
        n,
        ints(plan.conv),
        ints(plan.pos),
        Array.from(plan.sub.subarray(start, end), Boolean),
        Array.from(plan.tsMs.subarray(start, end)),
        ints(plan.dur),
        ints(plan.train),
        ints(plan.sys),
        ints(plan.variant),
        ints(plan.model),
        ints(plan.msgs),
        ints(plan.msgLen),
        ints(plan.tasks),
        Array.from(plan.otherTool.subarray(start, end), Boolean),
        ints(plan.parentN),
        ints(plan.parentJ),
        ints(plan.style),
        Array.from(plan.hasResponse.subarray(start, end), Boolean),
      ],
    )
  }
}

/** The scratch schema `bench`: the helper functions and the plan. */
async function setupGenerator(client: pg.ClientBase, plan: Plan): Promise<void> {
  for (const sql of HELPERS) await client.query(sql)
  await shipPlan(client, plan)
  await client.query('analyze bench.plan')
}

/**
 * Generate `rows` rows into `url`. `progress` is told about every finished chunk.
 * Leaves no trace but the rows: the bench schema is dropped, the table vacuumed and analysed
 * (so that every clone starts with statistics and a visibility map, as production would).
 */
export async function generateData(url: string, rows: number, progress: (done: number) => void = () => {}): Promise<GenerateResult> {
  const started = performance.now()
  const plan = buildPlan(rows)
  const corpus = Buffer.from(buildCorpus(), 'latin1')
  const main = await openClient(url, { applicationName: 'bench generate' })
  try {
    await setupGenerator(main, plan)

    // Chunks are handed out to WORKERS connections; each chunk is its own statement.
    let next = 1
    let done = 0
    const worker = async () => {
      const client = await openClient(url, { applicationName: 'bench generate' })
      try {
        await client.query(`set synchronous_commit = off`)
        while (next <= rows) {
          const from = next
          const to = Math.min(rows, from + INSERT_CHUNK - 1)
          next = to + 1
          await client.query(INSERT_SQL, [from, to, corpus])
          done += to - from + 1
          progress(done)
        }
      } finally {
        await client.end().catch(() => {})
      }
    }
    await Promise.all(Array.from({ length: WORKERS }, worker))

    await main.query('drop schema bench cascade')
    await main.query('vacuum (analyze) api_requests')
    const { rows: stats } = await main.query<{ avg: number; min: number; max: number; bytes: string }>(
      `select avg(octet_length(body::text))::float8 as avg, min(octet_length(body::text)) as min, max(octet_length(body::text)) as max,
              pg_total_relation_size('api_requests')::text as bytes
       from (select body from api_requests tablesample bernoulli ($1) repeatable (1)) s`,
      [Math.min(100, (100 * 5000) / rows)],
    )
    return {
      rows,
      ms: performance.now() - started,
      conversations: plan.conversations,
      subtaskConversations: plan.subtaskConversations,
      taskCalls: plan.taskCalls,
      avgBodyBytes: Math.round(stats[0].avg ?? 0),
      minBodyBytes: stats[0].min ?? 0,
      maxBodyBytes: stats[0].max ?? 0,
      tableBytes: Number(stats[0].bytes),
    }
  } finally {
    await main.end().catch(() => {})
  }
}
