/**
 * task_tool_invocation in the application's shape `[{id, name, input}]`
 * (docs/subtasks.md, "The backfill we want", step 1):
 *  - NULL and the response has Task calls → filled;
 *  - legacy 003's shape (elements with `prompt` but no `input`) → rewritten from the response,
 *    keeping `linked_conversation_id`;
 *  - content that is not an array, or a Task block lacking id/input → skipped and counted.
 *
 * Only the Task blocks of `response_body->'content'` leave the database (filtered in SQL);
 * response bodies are never read whole.
 */
import type { Backfill } from '../runner/backfill.js'
import { preExisting } from '../runner/high-water.js'
import { keyWalkPlannedStep } from '../runner/key-walk.js'
import { extractTaskCalls, rewriteLegacy, type TaskCall } from '../rules/task-calls.js'

/** Legacy-shaped, as SQL (keep in step with isLegacyShape in hooks/rules/task-calls.ts). */
const LEGACY_SHAPE = `(jsonb_typeof(task_tool_invocation) = 'array' and exists (
  select 1 from jsonb_array_elements(task_tool_invocation) l(e)
  where jsonb_typeof(l.e) = 'object' and l.e ? 'prompt' and not l.e ? 'input'))`

// The inner query takes response_body->'content' once, and only for candidate rows (NULL or
// legacy-shaped task_tool_invocation); its LIMIT keeps the planner from copying the
// expression into the outer query, where each use would decompress the response again.
const READ = (page: string) => `select id, legacy, case when legacy then tti end as old, content is not null as has_content,
    case when jsonb_typeof(content) = 'array' then coalesce((
      select jsonb_agg(b.e order by b.o) from jsonb_array_elements(content) with ordinality b(e, o)
      where b.e->>'type' = 'tool_use' and b.e->>'name' = 'Task'), '[]'::jsonb) end as task_blocks
  from (
    select request_id::text as id, task_tool_invocation as tti, coalesce(${LEGACY_SHAPE}, false) as legacy,
           case when task_tool_invocation is null or ${LEGACY_SHAPE} then response_body->'content' end as content
    from public.api_requests where ${page}) r`

const APPLY = `update public.api_requests a set task_tool_invocation = v.tti
  from jsonb_to_recordset($1::jsonb) as v(id uuid, tti jsonb, old jsonb)
  where a.request_id = v.id and a.task_tool_invocation is not distinct from v.old and ${preExisting('a')}`

interface Rewrite {
  id: string
  tti: TaskCall[]
  old: unknown
}

export const taskInvocations: Backfill = {
  name: 'task-invocations',
  version: 1,
  description: 'task_tool_invocation in the application shape [{id, name, input}] from response_body.content',
  tables: ['api_requests'],
  steps: [
    keyWalkPlannedStep<{ id: string; legacy: boolean; old: unknown; has_content: boolean; task_blocks: unknown }, Rewrite>('walk', {
      select: READ,
      compute(rows) {
        const work: Rewrite[] = []
        let skipped = 0
        for (const row of rows) {
          // Content is read only for NULL or legacy rows: none here means filled already, or no content.
          if (!row.legacy && !row.has_content) continue
          // task_blocks is null exactly when content is not an array.
          const extraction = extractTaskCalls(row.task_blocks)
          if (extraction.kind === 'malformed' || (row.legacy && extraction.kind === 'none')) {
            skipped++
            continue
          }
          if (extraction.kind === 'none') continue
          const tti = row.legacy ? rewriteLegacy(row.old as unknown[], extraction.calls) : extraction.calls
          work.push({ id: row.id, tti, old: row.old })
        }
        return { work, skipped }
      },
      // The old value is compared, so a row the application rewrote meanwhile is left alone.
      write: async (ctx, work) => (await ctx.client.query(APPLY, [JSON.stringify(work)])).rowCount ?? 0,
    }),
  ],
}
