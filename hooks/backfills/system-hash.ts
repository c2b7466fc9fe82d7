/**
 * system_hash for historical rows: the value the application would have stored
 * (docs/system-hash.md, computed by hooks/rules/system-prompt-hash.ts).
 *
 * A per-row rule (hooks/runner/row-rule.ts). Pending: `system_hash is null`. Only
 * `body->'system'` is read — bodies are often hundreds of kilobytes — and once per row.
 * Rows whose system prompt hashes to NULL (empty, JSON null, or not a string/array) stay NULL
 * and are counted as skipped; rows without a `system` key have nothing to hash.
 */
import type { Backfill } from '../runner/backfill.js'
import { computeSystemHash } from '../rules/system-prompt-hash.js'

export const systemHash: Backfill = {
  name: 'system-hash',
  version: 1,
  description: "system_hash from body->'system', as the application computes it",
  tables: ['api_requests'],
  row: {
    column: 'system_hash',
    type: 'text',
    pending: 'a.system_hash is null',
    // `[prompt]` when the body has a `system` key (a JSON null prompt included), else NULL. The
    // inner query's OFFSET keeps the planner from copying the expression, which would
    // decompress the body once per use.
    read: { system: `(select jsonb_build_array(x.s) from (select a.body->'system' as s offset 0) x where x.s is not null)` },
    compute(row) {
      if (!Array.isArray(row.system)) return null // no system prompt
      const h = computeSystemHash(row.system[0])
      return h === null ? 'skip' : { value: h }
    },
    // The application may have written a hash meanwhile: only NULLs are filled.
    guard: 'still-null',
  },
  steps: [],
}
