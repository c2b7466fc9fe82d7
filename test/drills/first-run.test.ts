/**
 * Drill: the README's first command on a fresh copy of the project, with no DATABASE_URL,
 * where users really put it: as root in a private folder (a clone under /root, or
 * `mktemp -d`, mode 0700), and as an ordinary user. And where the embedded server truly
 * cannot start, the message names the folder, the user and the fix.
 *
 * Each copy gets its own embedded server (its own .data/), and, as root, its own shared folder
 * (EMBEDDED_PG_SHARED_DIR) for the binaries and the relocated cluster, all removed afterwards.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { committedFiles } from '../helpers/drills.js'
import { cleanEnv, PROJECT_ROOT } from '../helpers/project.js'

const TIMEOUT = 600_000
const isRoot = userInfo().uid === 0
const cleanups: Array<() => void> = []

afterAll(() => {
  for (const undo of cleanups.splice(0).reverse()) {
    try {
      undo()
    } catch {
      /* best effort */
    }
  }
})

/** The project's files as a fresh clone has them (tracked and new, not ignored). */
function copyProject(into: string, withNodeModules: boolean): string {
  const dir = join(into, 'project')
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && existsSync(join(PROJECT_ROOT, f)))
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    cpSync(join(PROJECT_ROOT, f), join(dir, f))
  }
  if (withNodeModules) cpSync(join(PROJECT_ROOT, 'node_modules'), join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true })
  return dir
}

/** A folder of the server's own for binaries and relocated clusters (reachable by postgres). */
function sharedFolder(): string {
  const shared = mkdtempSync(join(tmpdir(), 'apt-shared-'))
  chmodSync(shared, 0o755)
  cleanups.push(() => rmSync(shared, { recursive: true, force: true }))
  return shared
}

function stopServer(dir: string, env: NodeJS.ProcessEnv, user?: string) {
  cleanups.push(() => {
    const cmd = user ? ['runuser', '-u', user, '--', 'npm', 'run', '-s', 'db:stop'] : ['npm', 'run', '-s', 'db:stop']
    execFileSync(cmd[0]!, cmd.slice(1), { cwd: dir, env: cleanEnv(env), stdio: 'ignore' })
  })
}

async function appliedCount(dir: string, env: NodeJS.ProcessEnv, user?: string): Promise<string> {
  // db:status through the same embedded server: exit 0 means nothing pending, hooks done.
  const cmd = user ? ['runuser', '-u', user, '--', 'npm', 'run', '-s', 'db:status'] : ['npm', 'run', '-s', 'db:status']
  const r = await execa(cmd[0]!, cmd.slice(1), { cwd: dir, env: cleanEnv(env), extendEnv: false, reject: false, all: true })
  expect(r.exitCode, r.all).toBe(0)
  return r.all
}

describe('the first run', () => {
  it.runIf(isRoot)('npm ci && npm run db:migrate works as root in a private (0700) folder', { timeout: TIMEOUT }, async () => {
    const home = mkdtempSync(join(tmpdir(), 'apt-root-'))
    cleanups.push(() => rmSync(home, { recursive: true, force: true }))
    expect(statSync(home).mode & 0o777).toBe(0o700)
    const dir = copyProject(home, false)
    const env = { EMBEDDED_PG_SHARED_DIR: sharedFolder(), npm_config_prefer_offline: 'true' }
    stopServer(dir, env)
    const r = await execa('bash', ['-c', 'npm ci --no-audit --no-fund && npm run db:migrate'], {
      cwd: dir,
      env: cleanEnv(env),
      extendEnv: false,
      reject: false,
      all: true,
    })
    expect(r.all).not.toMatch(/exit null/)
    expect(r.exitCode, r.all).toBe(0)
    expect(r.all).toMatch(new RegExp(`Applied ${committedFiles().length} migration\\(s\\)`))
    // The cluster is the postgres user's, outside the private folder; the password file
    // stays in the project, readable by root only.
    const clusters = join(env.EMBEDDED_PG_SHARED_DIR, 'clusters')
    const [cluster] = execFileSync('ls', [clusters], { encoding: 'utf8' }).trim().split('\n')
    const owner = execFileSync('stat', ['-c', '%U %a', join(clusters, cluster!)], { encoding: 'utf8' }).trim()
    expect(owner).toBe('postgres 700')
    expect(statSync(join(dir, '.data', 'embedded', 'server.json')).mode & 0o077).toBe(0)
    await appliedCount(dir, env)
  })

  it('npm run db:migrate works as an ordinary user', { timeout: TIMEOUT }, async () => {
    const user = isRoot ? 'apt_first_run' : undefined
    if (
      user &&
      execFileSync('getent', ['passwd'], { encoding: 'utf8' })
        .split('\n')
        .every((l) => !l.startsWith(`${user}:`))
    ) {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', user])
    }
    const base = mkdtempSync(join(tmpdir(), 'apt-user-'))
    cleanups.push(() => rmSync(base, { recursive: true, force: true }))
    const dir = copyProject(base, true)
    if (user) {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }))
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }))
      execFileSync('chown', ['-R', `${uid}:${gid}`, base])
      chownSync(base, uid, gid)
    }
    const env = { HOME: base }
    stopServer(dir, env, user)
    const cmd = user ? ['runuser', '-u', user, '--', 'npm', 'run', 'db:migrate'] : ['npm', 'run', 'db:migrate']
    const r = await execa(cmd[0]!, cmd.slice(1), { cwd: dir, env: cleanEnv(env), extendEnv: false, reject: false, all: true })
    expect(r.exitCode, r.all).toBe(0)
    expect(r.all).toMatch(new RegExp(`Applied ${committedFiles().length} migration\\(s\\)`))
    // As an ordinary user nothing moves: the cluster is in the project's .data/.
    expect(existsSync(join(dir, '.data', 'embedded', 'pgdata', 'PG_VERSION'))).toBe(true)
    await appliedCount(dir, env, user)
  })

  it('where the server cannot start, says which folder, which user and what to do', { timeout: TIMEOUT }, async () => {
    const base = mkdtempSync(join(tmpdir(), 'apt-blocked-'))
    cleanups.push(() => {
      chmodSync(join(base, 'locked'), 0o700)
      rmSync(base, { recursive: true, force: true })
    })
    // A folder the server's user cannot create anything in: private to root when root runs
    // the server as postgres, read-only to an ordinary user.
    const locked = join(base, 'locked')
    mkdirSync(locked, { mode: isRoot ? 0o700 : 0o500 })
    const clusterDir = join(locked, 'cluster')
    const env = { EMBEDDED_PG_DIR: join(base, 'data'), EMBEDDED_PG_CLUSTER_DIR: clusterDir, EMBEDDED_PG_SHARED_DIR: sharedFolder() }
    const r = await execa('npm', ['run', '-s', 'db:url'], {
      cwd: PROJECT_ROOT,
      env: cleanEnv(env),
      extendEnv: false,
      reject: false,
      all: true,
    })
    expect(r.exitCode).not.toBe(0)
    expect(r.all).not.toMatch(/exit null/)
    expect(r.all).toContain(clusterDir)
    expect(r.all).toContain(`OS user "${isRoot ? 'postgres' : userInfo().username}"`)
    expect(r.all).toMatch(/EMBEDDED_PG_CLUSTER_DIR/)
    expect(r.all).toMatch(/DATABASE_URL/)
    // Nothing was created where it could not be used.
    expect(existsSync(join(clusterDir, 'pgdata'))).toBe(false)
  })
})
