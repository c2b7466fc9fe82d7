/**
 * system_hash for historical rows: the value the application would have stored
 * (/work/shared/spec/system-hash.md, computed by hooks/lib/system-hash.ts).
 *
 * Pending: `system_hash is null and body ? 'system'`. Only `body->'system'` is read — bodies
 * are often hundreds of kilobytes. Rows whose system prompt hashes to NULL (empty, or not a
 * string/array) stay NULL and are counted as skipped; they are re-examined only by a re-run.
 */
import type { Backfill } from '../lib/backfill.js'
import { keyWalkPlannedStep, rangeFilter } from '../lib/key-walk.js'
import { computeSystemHash } from '../lib/system-hash.js'

// `body->'system'` is evaluated once per row: the fence (offset 0) keeps the planner from
// copying the expression into the outer filter, which would decompress the body twice.
const READ = (range: string) => `select id, system from (
    select request_id::text as id, body->'system' as system from api_requests
    where ${range} and system_hash is null offset 0) pending
  where system is not null`

const WRITE = `update api_requests a set system_hash = v.h
  from unnest($1::uuid[], $2::text[]) as v(id, h)
  where a.request_id = v.id and a.system_hash is null`

interface Hashed {
  id: string
  h: string
}

export const systemHash: Backfill = {
  name: 'system-hash',
  version: 1,
  description: "system_hash from body->'system', as the application computes it",
  tables: ['api_requests'],
  steps: [
    keyWalkPlannedStep<Hashed>(
      'walk',
      async (ctx, after, upTo) => {
        const range = rangeFilter(after, upTo)
        const { rows } = await ctx.client.query<{ id: string; system: unknown }>(READ(range.sql), range.params)
        const work: Hashed[] = []
        let skipped = 0
        for (const row of rows) {
          const h = computeSystemHash(row.system)
          if (h === null) skipped++
          else work.push({ id: row.id, h })
        }
        return { work, skipped }
      },
      async (ctx, work) => (await ctx.client.query(WRITE, [work.map((w) => w.id), work.map((w) => w.h)])).rowCount ?? 0,
    ),
  ],
}
