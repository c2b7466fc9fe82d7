/**
 * Only the shadow may be dropped. graphile-migrate rebuilds the shadow database (commit,
 * uncommit, watch's shadow runs, db:schema, db:drift) by dropping and creating the shadow
 * URL's database *name* through the ROOT connection — on the root server, whatever server
 * SHADOW_DATABASE_URL names. So a shadow URL on another server, with the same database name
 * as DATABASE_URL, makes it drop the real database. And db:reset drops DATABASE_URL itself.
 *
 * Before any of those, this checks by server identity (the cluster's system identifier, or
 * where a role may not read it, the postmaster's start time and port), not by host strings:
 *  - SHADOW_DATABASE_URL and ROOT_DATABASE_URL reach the same server;
 *  - the database that would be dropped there is not DATABASE_URL's database.
 * And db:reset refuses a database that holds application rows unless told `--drop-data`.
 */
import { openClient, withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import { type DatabaseUrls, databaseName } from '../graphile/connection-settings.js'

const databaseOf = (url: string): string => databaseName(url) ?? ''

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

/** Which PostgreSQL cluster `url` reaches. */
export async function serverIdentity(url: string): Promise<string> {
  return withClient(
    url,
    async (c) => {
      try {
        const { rows } = await c.query<{ id: string }>('select system_identifier::text as id from pg_catalog.pg_control_system()')
        return `system:${rows[0]!.id}`
      } catch {
        // pg_control_system() is for superusers (and pg_monitor) only. The postmaster's start
        // time to the microsecond, with its port, tells two running servers apart just as well.
        const { rows } = await c.query<{ id: string }>(
          `select pg_catalog.pg_postmaster_start_time()::text || ' port ' || pg_catalog.current_setting('port') as id`,
        )
        return `started:${rows[0]!.id}`
      }
    },
    { applicationName: 'shadow guard' },
  )
}

/**
 * The server of `url`, reached through the maintenance database when `url`'s own database
 * does not exist (yet): graphile-migrate creates the shadow, and reset the database.
 */
async function identityOf(url: string, rootUrl: string): Promise<string> {
  try {
    return await serverIdentity(url)
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error
    return serverIdentity(withDatabase(url, databaseOf(rootUrl)))
  }
}

/** Refuse, with nothing dropped, unless rebuilding the shadow can only touch the shadow. */
export async function assertShadowIsSafe(urls: DatabaseUrls, command: string): Promise<void> {
  const { shadowUrl, rootUrl, databaseUrl } = urls
  if (!shadowUrl) return // graphile-migrate refuses these commands itself ("Could not determine the shadow database name")
  if (!rootUrl) {
    // graphile-migrate would fall back to the bare name "template1", i.e. whatever server
    // PGHOST/PGPORT/PGUSER name in this shell, and drop the shadow's database name there.
    throw new UserError(
      `${command} refused, nothing was dropped: SHADOW_DATABASE_URL is set but ROOT_DATABASE_URL is not. graphile-migrate ` +
        `would drop and recreate "${databaseOf(shadowUrl)}" through "template1" on whichever server the PG* variables of this ` +
        `shell name. Set ROOT_DATABASE_URL to a maintenance database (postgres or template1) on the shadow's server.`,
    )
  }
  const [shadowServer, rootServer, databaseServer] = await Promise.all([
    identityOf(shadowUrl, rootUrl),
    serverIdentity(rootUrl),
    identityOf(databaseUrl, rootUrl),
  ])
  if (shadowServer !== rootServer) {
    throw new UserError(
      `${command} refused, nothing was dropped: SHADOW_DATABASE_URL and ROOT_DATABASE_URL reach different PostgreSQL servers. ` +
        `graphile-migrate drops and recreates the shadow database by name through ROOT_DATABASE_URL, so it would drop ` +
        `"${databaseOf(shadowUrl)}" on the root server. Point both at the same server (the shadow is a scratch database there).`,
    )
  }
  if (rootServer === databaseServer && databaseOf(shadowUrl) === databaseOf(databaseUrl)) {
    throw new UserError(
      `${command} refused, nothing was dropped: the shadow database "${databaseOf(shadowUrl)}" is DATABASE_URL's own database ` +
        `on the same server, and it would be dropped and rebuilt. Give SHADOW_DATABASE_URL a database of its own (e.g. append _shadow).`,
    )
  }
}

/**
 * db:reset drops DATABASE_URL's database by name through ROOT_DATABASE_URL: both must reach
 * the same server, and a database that holds application rows is dropped only when asked.
 */
export async function assertResettable(urls: DatabaseUrls, dropData: boolean): Promise<void> {
  const { databaseUrl, rootUrl } = urls
  if (rootUrl && (await identityOf(databaseUrl, rootUrl)) !== (await serverIdentity(rootUrl))) {
    throw new UserError(
      'db:reset refused, nothing was dropped: DATABASE_URL and ROOT_DATABASE_URL reach different PostgreSQL servers, and the reset ' +
        `would drop "${databaseOf(databaseUrl)}" on the root server. Point ROOT_DATABASE_URL at DATABASE_URL's server.`,
    )
  }
  if (dropData) return
  let client: Awaited<ReturnType<typeof openClient>>
  try {
    client = await openClient(databaseUrl, { applicationName: 'db:reset guard' })
  } catch (error) {
    if ((error as { code?: string }).code === '3D000') return // nothing there to lose
    throw error
  }
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `select format('%I.%I', schemaname, tablename) as name from pg_catalog.pg_tables where schemaname = 'public' order by 1`,
    )
    const holding: string[] = []
    for (const { name } of tables) {
      const { rows } = await client.query<{ any: boolean }>(`select exists (select 1 from ${name}) as any`)
      if (rows[0]!.any) holding.push(name)
    }
    if (holding.length) {
      throw new UserError(
        `db:reset refused, nothing was dropped: ${databaseOf(databaseUrl)} holds application rows (${holding.join(', ')}). ` +
          'db:reset drops the whole database. If that is what you want, run `npm run db:reset -- --drop-data`.',
      )
    }
  } finally {
    await client.end().catch(() => {})
  }
}
