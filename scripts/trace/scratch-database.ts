/**
 * The database a trace runs on: the shadow database, rebuilt from the committed chain, with
 * SAMPLE_ROWS rows in each hot table, so that a scan, an update or a rewrite has something
 * to count. The shadow is the one database our commands may drop; graphile-migrate's commit
 * rebuilds it anyway.
 *
 * Building it costs one `graphile-migrate reset --shadow` (seconds); `db:watch` keeps it
 * between saves and only checks that it is still current (`scratchIsCurrent`).
 */
import type pg from 'pg'
import { relationExists } from '../../lib/catalog-probe.js'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import type { DatabaseUrls } from '../graphile/connection-settings.js'
import { childEnv } from '../graphile/connection-settings.js'
import { runGraphileMigrate } from '../graphile/graphile-cli.js'
import { assertShadowIsSafe } from '../guards/shadow-guard.js'
import { readCommittedChain } from '../verify/chain.js'

/** Rows per hot table: far above the rules' FEW_ROWS, small enough to load in milliseconds. */
export const SAMPLE_ROWS = 200

// Proxy-like rows: a JSON request with a system prompt, a JSON response, and one streamed chunk each.
const SAMPLE_ROWS_SQL = `
  insert into public.api_requests
    (request_id, train_id, method, path, "timestamp", model, request_type, body, response_body, response_status, input_tokens, output_tokens)
  select ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'trace-sample', 'POST', '/v1/messages',
         now() - g * interval '1 minute', 'claude-sample', 'inference',
         jsonb_build_object('system', 'You are a helpful assistant.', 'messages',
                            jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'sample question ' || g))),
         jsonb_build_object('role', 'assistant', 'content', jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'sample answer ' || g))),
         200, 10, 20
    from generate_series(1, $1::int) g;
  insert into public.streaming_chunks (request_id, chunk_index, "timestamp", data)
  select ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 0, now(), 'data: sample chunk ' || g
    from generate_series(1, $1::int) g;`

export function requireShadow(urls: DatabaseUrls, command: string): { shadowUrl: string } {
  if (!urls.shadowUrl || !urls.rootUrl)
    throw new UserError(
      `${command} traces on the shadow database, rebuilt from the committed chain: set SHADOW_DATABASE_URL and ROOT_DATABASE_URL ` +
        '(the npm scripts set both for the embedded server).',
    )
  return { shadowUrl: urls.shadowUrl }
}

/** Sample rows, one statement per table (pg's extended protocol takes one statement per call). */
async function insertSampleRows(client: pg.ClientBase): Promise<void> {
  for (const statement of SAMPLE_ROWS_SQL.split(';').filter((s) => s.trim())) await client.query(statement, [SAMPLE_ROWS])
}

/** Rebuild the shadow from the committed chain and load the sample rows. */
export async function buildScratchDatabase(urls: DatabaseUrls, projectDir: string, command: string): Promise<void> {
  const { shadowUrl } = requireShadow(urls, command)
  await assertShadowIsSafe(urls, command)
  const build = await runGraphileMigrate(['reset', '--shadow', '--erase'], {
    cwd: projectDir,
    env: childEnv(urls, { SKIP_SCHEMA_DUMP: '1' }),
    quiet: true,
  })
  if (build.exitCode !== 0) {
    throw new UserError(`${command} could not build the committed chain on the shadow database:\n${build.output}`)
  }
  await withClient(shadowUrl, insertSampleRows)
}

/** Whether the shadow still is a scratch database for this chain (db:commit rebuilds it without rows). */
export async function scratchIsCurrent(shadowUrl: string, migrationsFolder: string): Promise<boolean> {
  try {
    return await withClient(shadowUrl, async (c) => {
      // Asked through the catalog first: a failed probe would write an ERROR line to the server's log.
      if (!(await relationExists(c, 'graphile_migrate.migrations')) || !(await relationExists(c, 'public.api_requests'))) return false
      const { rows } = await c.query(`
        select (select count(*) from graphile_migrate.migrations)::int as applied,
               (select count(*) from (select 1 from public.api_requests limit ${SAMPLE_ROWS}) s)::int as sample`)
      return rows[0].applied === readCommittedChain(migrationsFolder).length && rows[0].sample === SAMPLE_ROWS
    })
  } catch {
    return false // no shadow database yet, or not built by the chain
  }
}
