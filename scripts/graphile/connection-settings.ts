/**
 * Where do the commands connect? Either the three URLs from the environment, or — when
 * DATABASE_URL is absent and we are not in production — the embedded development server.
 */
import { resolve } from 'node:path'
import pg from 'pg'
import { ensureEmbeddedServer } from '../embedded/embedded-server.js'
import { registerUrlSecret, redactUrl } from '../../lib/redact.js'
import { UserError } from '../../lib/errors.js'
import { openClient } from '../../lib/connection.js'

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..')
export const EMBEDDED_DATA_ROOT = resolve(PROJECT_ROOT, '.data', 'embedded')
export const APP_DATABASE = 'agent_prompt_train'
export const SHADOW_DATABASE = 'agent_prompt_train_shadow'

export interface DatabaseUrls {
  databaseUrl: string
  shadowUrl?: string
  rootUrl?: string
  embedded: boolean
  /** The embedded server's folder (its data, log and generated files), when embedded. */
  dataRoot?: string
}

/** The database a connection URL names (undefined when it names none or does not parse). */
export function databaseName(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || undefined
  } catch {
    return undefined
  }
}

/**
 * A value that does not parse as a URL may still hold a password (`postgres//u:secret@h/db`),
 * and redact() only recognises passwords in well-formed URLs: show nothing before the last @.
 */
function maskUnparsable(value: string): string {
  // Passwords in the positions redact() knows (password=…, scheme://u:p@) go first, so an
  // `@` inside a password can no longer pass for the one before the host.
  const clean = redactUrl(value)
  const at = clean.lastIndexOf('@')
  return at < 0 ? clean : `***${clean.slice(at)}`
}

/** Reject configurations that would silently hurt a real deploy. */
export function validateUrls(urls: DatabaseUrls): void {
  const { databaseUrl, shadowUrl } = urls
  for (const [name, value] of [
    ['DATABASE_URL', databaseUrl],
    ['SHADOW_DATABASE_URL', shadowUrl],
    ['ROOT_DATABASE_URL', urls.rootUrl],
  ] as const) {
    if (value === undefined) continue
    try {
      const u = new URL(value)
      if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error('scheme')
    } catch {
      throw new UserError(
        `${name} is not a PostgreSQL connection string (expected postgres://user:password@host:port/database, got "${maskUnparsable(value)}").`,
      )
    }
  }
  if (shadowUrl && (shadowUrl === databaseUrl || sameDatabase(shadowUrl, databaseUrl))) {
    throw new UserError(
      'SHADOW_DATABASE_URL points at the same database as DATABASE_URL. The shadow database is dropped and rebuilt on every commit, so it must be a separate, disposable database (e.g. append _shadow to the name).',
    )
  }
}

function sameDatabase(a: string, b: string): boolean {
  try {
    const ua = new URL(a)
    const ub = new URL(b)
    const port = (u: URL) => u.port || '5432'
    // The loopback names all reach the same local server.
    const host = (u: URL) => {
      const h = u.hostname.toLowerCase().replace(/^\[|\]$/g, '')
      return h === 'localhost' || h === '::1' || /^127\./.test(h) ? 'loopback' : h
    }
    return host(ua) === host(ub) && port(ua) === port(ub) && databaseName(a) === databaseName(b)
  } catch {
    return false
  }
}

/**
 * Resolve the URLs, starting the embedded server if needed. With the embedded server, the
 * application and shadow databases are created when missing.
 */
export async function resolveDatabaseUrls(env: NodeJS.ProcessEnv = process.env): Promise<DatabaseUrls> {
  if (env.DATABASE_URL) {
    const urls: DatabaseUrls = {
      databaseUrl: env.DATABASE_URL,
      shadowUrl: env.SHADOW_DATABASE_URL || undefined,
      rootUrl: env.ROOT_DATABASE_URL || undefined,
      embedded: false,
    }
    for (const u of [urls.databaseUrl, urls.shadowUrl, urls.rootUrl]) registerUrlSecret(u)
    validateUrls(urls)
    return urls
  }
  if (env.NODE_ENV === 'production') {
    throw new UserError(
      'DATABASE_URL is not set and NODE_ENV=production. Refusing to start the embedded development database in production: set DATABASE_URL (and SHADOW_DATABASE_URL / ROOT_DATABASE_URL if you commit or reset from here).',
    )
  }
  if (env.SHADOW_DATABASE_URL || env.ROOT_DATABASE_URL) {
    throw new UserError(
      'SHADOW_DATABASE_URL or ROOT_DATABASE_URL is set but DATABASE_URL is not. Set all three to use your own server, or unset them all to use the embedded one.',
    )
  }
  const server = await ensureEmbeddedServer(env.EMBEDDED_PG_DIR ? resolve(env.EMBEDDED_PG_DIR) : EMBEDDED_DATA_ROOT)
  await ensureDatabases(server.url('postgres'), [APP_DATABASE, SHADOW_DATABASE])
  return {
    databaseUrl: server.url(APP_DATABASE),
    shadowUrl: server.url(SHADOW_DATABASE),
    rootUrl: server.url('postgres'),
    embedded: true,
    dataRoot: server.dataRoot,
  }
}

/** Create each database that does not exist yet (connected to the maintenance database). */
export async function ensureDatabases(rootUrl: string, names: string[]): Promise<void> {
  const client = await openClient(rootUrl)
  try {
    for (const name of names) {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name])
      if (!rowCount) {
        try {
          await client.query(`create database ${pg.escapeIdentifier(name)}`)
        } catch (e) {
          // Two commands racing to create it: the other one won, which is fine.
          if ((e as { code?: string }).code !== '42P04' && (e as { code?: string }).code !== '23505') throw e
        }
      }
    }
  } finally {
    await client.end()
  }
}

/** Environment for child processes (graphile-migrate, hooks) pointing at these URLs. */
export function childEnv(urls: DatabaseUrls, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: urls.databaseUrl, ...extra }
  if (urls.shadowUrl) env.SHADOW_DATABASE_URL = urls.shadowUrl
  else delete env.SHADOW_DATABASE_URL
  if (urls.rootUrl) env.ROOT_DATABASE_URL = urls.rootUrl
  else delete env.ROOT_DATABASE_URL
  // A URL without a password (db:env's, with PGPASSFILE): pg inside graphile-migrate reads the
  // pgpass file and announces, on every run, that it will stop doing so in pg 9. Our own
  // connections look the password up themselves (lib/connection.ts); this child cannot.
  if (!new URL(urls.databaseUrl).password) env.NODE_OPTIONS = withoutDeprecationNotices(env.NODE_OPTIONS)
  return env
}

/** NODE_OPTIONS plus the flag that hides Node's DeprecationWarnings (pg's pgpass notice). */
export const HIDE_DEPRECATIONS = '--disable-warning=DeprecationWarning'
export function withoutDeprecationNotices(nodeOptions: string | undefined): string {
  return nodeOptions?.includes(HIDE_DEPRECATIONS) ? nodeOptions : [nodeOptions, HIDE_DEPRECATIONS].filter(Boolean).join(' ')
}
