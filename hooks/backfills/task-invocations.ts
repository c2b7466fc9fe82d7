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
import { extractTaskCalls, rewriteLegacy } from '../rules/task-calls.js'

/** Legacy-shaped, as SQL (keep in step with isLegacyShape in hooks/rules/task-calls.ts). */
const LEGACY_SHAPE = `(jsonb_typeof(a.task_tool_invocation) = 'array' and exists (
  select 1 from jsonb_array_elements(a.task_tool_invocation) l(e)
  where jsonb_typeof(l.e) = 'object' and l.e ? 'prompt' and not l.e ? 'input'))`

// The content's Task blocks as an array; the JSON string "not-array" when content is not an
// array; NULL when there is no content. The inner query takes response_body->'content' once:
// its OFFSET keeps the planner from copying the expression, where each use would decompress
// the response again.
const TASK_BLOCKS = `(select case when jsonb_typeof(x.c) = 'array' then coalesce((
      select jsonb_agg(b.e order by b.o) from jsonb_array_elements(x.c) with ordinality b(e, o)
      where b.e->>'type' = 'tool_use' and b.e->>'name' = 'Task'), '[]'::jsonb)
    else '"not-array"'::jsonb end
  from (select a.response_body->'content' as c offset 0) x where x.c is not null)`

export const taskInvocations: Backfill = {
  name: 'task-invocations',
  version: 1,
  description: 'task_tool_invocation in the application shape [{id, name, input}] from response_body.content',
  tables: ['api_requests'],
  row: {
    column: 'task_tool_invocation',
    type: 'jsonb',
    pending: `a.task_tool_invocation is null or coalesce(${LEGACY_SHAPE}, false)`,
    read: { legacy: `coalesce(${LEGACY_SHAPE}, false)`, blocks: TASK_BLOCKS },
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
}
