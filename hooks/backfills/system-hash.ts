/**
 * system_hash for historical rows: the value the application would have stored
 * (/work/shared/spec/system-hash.md, computed by hooks/lib/system-hash.ts).
 *
 * Pending: `system_hash is null and body ? 'system'`. Only `body->'system'` is read — bodies
 * are often hundreds of kilobytes. Rows whose system prompt hashes to NULL (empty, or not a
 * string/array) stay NULL and are counted as skipped; they are re-examined only by a re-run.
 */
import type { Backfill } from '../lib/backfill.js'
import { keyWalkStep, rangeFilter } from '../lib/key-walk.js'
import { computeSystemHash } from '../lib/system-hash.js'

const APPLY = `update api_requests a set system_hash = v.h
  from jsonb_to_recordset($1::jsonb) as v(id uuid, h text)
  where a.request_id = v.id and a.system_hash is null`

export const systemHash: Backfill = {
  name: 'system-hash',
  version: 1,
  description: "system_hash from body->'system', as the application computes it",
  tables: ['api_requests'],
  steps: [
    keyWalkStep('walk', async (ctx, after, upTo) => {
      const range = rangeFilter(after, upTo)
      const { rows } = await ctx.client.query<{ id: string; system: unknown }>(
        `select request_id::text as id, body->'system' as system from api_requests
         where ${range.sql} and system_hash is null and body ? 'system'`,
        range.params,
      )
      const updates: Array<{ id: string; h: string }> = []
      let skipped = 0
      for (const row of rows) {
        const h = computeSystemHash(row.system)
        if (h === null) skipped++
        else updates.push({ id: row.id, h })
      }
      if (!updates.length) return { changed: 0, skipped }
      const result = await ctx.client.query(APPLY, [JSON.stringify(updates)])
      return { changed: result.rowCount ?? 0, skipped }
    }),
  ],
}
