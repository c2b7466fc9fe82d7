/**
 * system_hash for historical rows: the value the application would have stored
 * (docs/system-hash.md, computed by hooks/rules/system-prompt-hash.ts).
 *
 * Pending: `system_hash is null` and a `system` key in the body. Only `body->'system'` is
 * read — bodies are often hundreds of kilobytes. Rows whose system prompt hashes to NULL (empty, or not a
 * string/array) stay NULL and are counted as skipped; they are re-examined only by a re-run.
 */
import type { Backfill } from '../runner/backfill.js'
import { type ColumnValue, fillWhereNull, keyWalkPlannedStep } from '../runner/key-walk.js'
import { computeSystemHash } from '../rules/system-prompt-hash.js'

// `body->'system'` only for rows still pending, and once per row: every use of the expression
// would decompress the body again (the inner query's LIMIT keeps the planner from copying it
// into the outer one). `pending` tells a JSON null prompt (counted as skipped) from none.
const READ = (page: string) => `select id, system, system is not null as pending from (
    select request_id::text as id, case when system_hash is null then body->'system' end as system
    from public.api_requests where ${page}) r`

export const systemHash: Backfill = {
  name: 'system-hash',
  version: 1,
  description: "system_hash from body->'system', as the application computes it",
  tables: ['api_requests'],
  steps: [
    keyWalkPlannedStep<{ id: string; system: unknown; pending: boolean }, ColumnValue>('walk', {
      select: READ,
      compute(rows) {
        const work: ColumnValue[] = []
        let skipped = 0
        for (const row of rows) {
          if (!row.pending) continue // hashed already, or no system prompt
          const h = computeSystemHash(row.system)
          if (h === null) skipped++
          else work.push({ id: row.id, value: h })
        }
        return { work, skipped }
      },
      // Only rows still without a hash: the application may have written one meanwhile.
      write: fillWhereNull('system_hash', 'text'),
    }),
  ],
}
