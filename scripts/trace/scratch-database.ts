/**
 * The database a trace runs on: the shadow database, rebuilt from the committed chain, with
 * SAMPLE_ROWS rows in each hot table, so that a scan, an update or a rewrite has something
 * to count. The shadow is the one database our commands may drop; graphile-migrate's commit
 * rebuilds it anyway.
 *
 * Building it costs one `graphile-migrate reset --shadow` (seconds); `db:watch` keeps it
 * between saves and only checks that it is still current (`scratchIsCurrent`).
 */
import { join } from 'node:path'
import type pg from 'pg'
import { relationExists } from '../../lib/catalog-probe.js'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import type { DatabaseUrls } from '../graphile/connection-settings.js'
import { childEnv } from '../graphile/connection-settings.js'
import { runGraphileMigrate } from '../graphile/graphile-cli.js'
import { assertShadowIsSafe } from '../guards/shadow-guard.js'
import { readCommittedChain } from '../verify/chain.js'
import { SAMPLE_ROWS } from './sample.js'

// Proxy-like rows: a JSON request with a system prompt, a JSON response, and one streamed chunk
// each; spread over two years, three trains, models and request types, some values missing, so
// that a migration's WHERE (old rows, one model, NULLs) matches some of them as it would on
// production.
const SAMPLE_ROWS_SQL = `
  insert into public.api_requests
    (request_id, train_id, method, path, "timestamp", model, request_type, body, response_body, response_status, input_tokens, output_tokens,
     account_id, error)
  select ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'trace-train-' || g % 3, 'POST', '/v1/messages',
         now() - (g * 3.65) * interval '1 day', (array['claude-sample-a', 'claude-sample-b', null])[g % 3 + 1],
         (array['inference', 'quota', 'query_evaluation', null])[g % 4 + 1],
         jsonb_build_object('system', 'You are a helpful assistant.', 'messages',
                            jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'sample question ' || g))),
         jsonb_build_object('role', 'assistant', 'content', jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'sample answer ' || g))),
         case when g % 10 = 0 then 500 else 200 end, g % 50, 20,
         case when g % 2 = 0 then 'trace-account-' || g % 5 end, case when g % 10 = 0 then 'overloaded' end
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
  await withClient(shadowUrl, async (c) => {
    await insertSampleRows(c)
    await markScratch(c, scratchMark(projectDir))
  })
}

/** What the scratch database was built from: the chain's last hash (a branch switch changes it). */
function scratchMark(projectDir: string): string {
  const chain = readCommittedChain(join(projectDir, 'migrations'))
  return `migration trace scratch: ${chain.length} migrations, last ${chain.at(-1)?.recordedHash ?? 'none'}`
}

/** The mark lives in the database's comment: outside every table, so no trace reports it. */
async function markScratch(client: pg.ClientBase, mark: string): Promise<void> {
  const { rows } = await client.query('select current_database() as db')
  await client.query(`comment on database ${client.escapeIdentifier(rows[0].db)} is ${client.escapeLiteral(mark)}`)
}

/** After a trace whose SQL committed on the scratch database: rebuild it before the next. */
export async function markScratchDirty(shadowUrl: string): Promise<void> {
  await withClient(shadowUrl, (c) => markScratch(c, 'migration trace scratch: changed by a traced COMMIT'))
}

/**
 * Whether the shadow still is the scratch database for this chain: built by buildScratchDatabase
 * from the same committed chain, and not changed since (db:commit rebuilds it without rows and
 * without the mark; a traced COMMIT marks it changed).
 */
export async function scratchIsCurrent(shadowUrl: string, projectDir: string): Promise<boolean> {
  try {
    return await withClient(shadowUrl, async (c) => {
      const { rows } = await c.query(
        `select pg_catalog.shobj_description(d.oid, 'pg_database') as mark from pg_catalog.pg_database d where d.datname = current_database()`,
      )
      if (rows[0]?.mark !== scratchMark(projectDir)) return false
      // Asked through the catalog first: a failed probe would write an ERROR line to the server's log.
      if (!(await relationExists(c, 'public.api_requests'))) return false
      const sample = await c.query(`select count(*)::int as n from (select 1 from public.api_requests limit ${SAMPLE_ROWS}) s`)
      return sample.rows[0].n === SAMPLE_ROWS
    })
  } catch {
    return false // no shadow database yet
  }
}
