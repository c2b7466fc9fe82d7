/**
 * The one way this project opens a PostgreSQL session. Every caller — the CLI, the hooks,
 * the benchmark and the tests — goes through `openClient()` or `withClient()`, so each
 * session gets the same three things: its password registered for redaction, a listener
 * that turns a dropped connection into the failing query's error instead of a crash, and an
 * application_name that shows in pg_stat_activity who it is.
 */
import { createRequire } from 'node:module'
import pg from 'pg'
import { registerUrlSecret } from './redact.js'

/** The pgpass module pg itself uses (it has no types of its own). */
const pgpass = createRequire(import.meta.url)('pgpass') as (params: unknown, cb: (password?: string) => void) => void

/**
 * A URL without a password (`db:env` exports them, with PGPASSFILE naming a 0600 file): look the
 * password up in the pgpass file ourselves. pg would do the same, but prints a
 * DeprecationWarning for it on every command, which no user can act on.
 */
function passwordLookup(url: string): ((params: unknown) => Promise<string>) | undefined {
  let hasPassword: boolean
  try {
    hasPassword = new URL(url).password !== ''
  } catch {
    return undefined // not a URL: pg reports it, as before (an error here could carry the text)
  }
  if (hasPassword || process.env.PGPASSWORD) return undefined
  // pg hands over the connection's parameters (host, port, database, user); no entry: undefined,
  // which pg takes as "no password", as it does for its own lookup.
  return (params) => new Promise((resolve) => pgpass(params, (password) => resolve(password as string)))
}

export interface ClientOptions {
  /** Shown in pg_stat_activity (and so in lock-wait reports). */
  applicationName?: string
  /** Pin unqualified names to this schema, whatever the role's own search_path. */
  searchPath?: string
  /**
   * Have the server probe this session's connection too (after 30 s idle, three probes 10 s
   * apart): a session whose host vanished is then ended, with its advisory locks, within
   * about a minute — not after the operating system's default of two hours. For sessions
   * that hold a lock other processes wait for (deploy lock, hooks, online schema step).
   */
  serverKeepalives?: boolean
}

const SERVER_KEEPALIVES = { tcp_keepalives_idle: '30', tcp_keepalives_interval: '10', tcp_keepalives_count: '3' }

export async function openClient(url: string, opts: ClientOptions = {}): Promise<pg.Client> {
  registerUrlSecret(url)
  // TCP keepalives from our side: a server that vanished is noticed by the OS, not never.
  const client = new pg.Client({
    connectionString: url,
    password: passwordLookup(url) as (() => Promise<string>) | undefined,
    application_name: opts.applicationName,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  })
  // Without a listener an 'error' event on an idle client would crash the process.
  client.on('error', () => {})
  await client.connect()
  if (opts.searchPath) await client.query(`select set_config('search_path', $1, false)`, [opts.searchPath])
  if (opts.serverKeepalives) {
    for (const [name, value] of Object.entries(SERVER_KEEPALIVES)) await client.query(`select set_config($1, $2, false)`, [name, value])
  }
  return client
}

/** A short-lived session: open, run `fn`, always close. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, opts: ClientOptions = {}): Promise<T> {
  const client = await openClient(url, opts)
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}
