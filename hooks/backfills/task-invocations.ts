/**
 * task_tool_invocation in the application's shape `[{id, name, input}]`
 * (docs/subtasks.md, "The backfill we want", step 1):
 *  - NULL and the response has Task calls → filled;
 *  - legacy 003's shape (elements with `prompt` but no `input`) → rewritten from the response,
 *    keeping `linked_conversation_id`;
 *  - content that is not an array, or a Task block lacking id/input → skipped and counted.
 *
 * A per-row rule (hooks/runner/row-rule.ts). Only the Task blocks of
 * `response_body->'content'` leave the database (filtered in SQL); response bodies are never
 * read whole.
 */
import type { Backfill } from '../runner/backfill.js'
import { LEDGER_SCHEMA } from '../runner/ledger.js'
import { retireTables } from '../runner/retired-tables.js'
import { extractTaskCalls, rewriteLegacy } from '../rules/task-calls.js'

/** Legacy-shaped, as SQL (keep in step with isLegacyShape in hooks/rules/task-calls.ts). */
const LEGACY_SHAPE = `(jsonb_typeof(a.task_tool_invocation) = 'array' and exists (
  select 1 from jsonb_array_elements(a.task_tool_invocation) l(e)
  where jsonb_typeof(l.e) = 'object' and l.e ? 'prompt' and not l.e ? 'input'))`

// The content's Task blocks as an array; the JSON string "not-array" when content is not an
// array; NULL when there is no content. The inner query takes response_body->'content' once:
// its OFFSET keeps the planner from copying the expression, where each use would decompress
// the response again.
export const TASK_BLOCKS_FROM_RESPONSE = `(select case when jsonb_typeof(x.c) = 'array' then coalesce((
      select jsonb_agg(b.e order by b.o) from jsonb_array_elements(x.c) with ordinality b(e, o)
      where b.e->>'type' = 'tool_use' and b.e->>'name' = 'Task'), '[]'::jsonb)
    else '"not-array"'::jsonb end
  from (select a.response_body->'content' as c offset 0) x where x.c is not null)`

/**
 * The Task blocks of rows already read before the walk — by sub-task linking's scan-calls,
 * which must see every call before the walk writes the first link — so that the walk does not
 * decompress those responses a second time. `SEEN_BLOCKS` holds the blocks of every pending
 * row with Task blocks (or content that is not an array); `SEEN_SINCE` one row: the xmin of
 * the snapshot taken before that scan began, whether the scan covered every key since, and
 * the version of this backfill whose SQL it read the blocks with.
 *
 * The walk uses them for a row only when the scan is complete and the row's current version is
 * older than that xmin: such a version was the row's current one during the whole scan, so the
 * scan read exactly it. A row absent from `SEEN_BLOCKS` then has no Task block ('[]'; a row
 * without content computes the same). Any other row is read from its response, as without
 * them. Unlogged: a crash empties both tables together, and the walk simply reads every response.
 */
const VERSION = 1

export const SEEN_BLOCKS = `${LEDGER_SCHEMA}.task_blocks_seen`
export const SEEN_SINCE = `${LEDGER_SCHEMA}.task_blocks_seen_since`
export const CREATE_SEEN_TABLES = [
  `create unlogged table if not exists ${SEEN_BLOCKS} (request_id uuid primary key, blocks jsonb not null)`,
  `create unlogged table if not exists ${SEEN_SINCE} (horizon xid8 not null, complete boolean not null, version integer not null)`,
]
export const SEEN_TABLES = [SEEN_BLOCKS, SEEN_SINCE]
/** Before the scan: its horizon, not complete yet. */
export const START_SEEN_SCAN = `insert into ${SEEN_SINCE} (horizon, complete, version) select pg_snapshot_xmin(pg_current_snapshot()), false, ${VERSION}`
/** In the scan's last batch: every key has been read. */
export const COMPLETE_SEEN_SCAN = `update ${SEEN_SINCE} set complete = true`

const BLOCKS_SEEN_OR_READ = `coalesce((select coalesce(s.blocks, '[]'::jsonb) from ${SEEN_SINCE} h
      left join ${SEEN_BLOCKS} s on s.request_id = a.request_id
      where h.complete and h.version = ${VERSION} and a.conversation_id is not null and age(a.xmin) > age(xid(h.horizon))), ${TASK_BLOCKS_FROM_RESPONSE})`

export const taskInvocations: Backfill = {
  name: 'task-invocations',
  version: VERSION,
  description: 'task_tool_invocation in the application shape [{id, name, input}] from response_body.content',
  tables: ['api_requests'],
  row: {
    column: 'task_tool_invocation',
    type: 'jsonb',
    pending: `a.task_tool_invocation is null or coalesce(${LEGACY_SHAPE}, false)`,
    read: { legacy: `coalesce(${LEGACY_SHAPE}, false)`, blocks: BLOCKS_SEEN_OR_READ },
    compute(row) {
      const legacy = row.legacy === true
      // No content: nothing to extract (a legacy row without content cannot be rewritten).
      if (row.blocks === null || row.blocks === undefined) return legacy ? 'skip' : null
      const extraction = extractTaskCalls(row.blocks)
      if (extraction.kind === 'malformed' || (legacy && extraction.kind === 'none')) return 'skip'
      if (extraction.kind === 'none') return null
      return { value: legacy ? rewriteLegacy(row.old as unknown[], extraction.calls) : extraction.calls }
    },
    // The old value is compared, so a row the application rewrote meanwhile is left alone.
    guard: 'unchanged',
  },
  steps: [],
  // The rule's SQL names the tables of blocks seen early: they exist (empty unless sub-task
  // linking filled them) whenever it runs, and go when the column is done.
  setupSql: CREATE_SEEN_TABLES,
  afterRowPass: (client) => retireTables(client, SEEN_TABLES),
}
