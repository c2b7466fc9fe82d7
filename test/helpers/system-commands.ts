/**
 * Tools some tests need from the operating system (pg_dump and psql for dump/restore
 * round trips). A fresh machine may lack them: the test installs the Debian package then,
 * as the README's one test command must work on a new machine.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const installed = new Map<string, string>()

/**
 * Where `command` is: on PATH, or in an sbin directory (Debian installs daemons such as
 * pgbouncer in /usr/sbin, which an ordinary user's PATH leaves out). Null when missing.
 */
function locate(command: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' })
  if (found.status === 0 && found.stdout.trim()) return found.stdout.trim()
  return ['/usr/local/sbin', '/usr/sbin', '/sbin'].map((dir) => `${dir}/${command}`).find((path) => existsSync(path)) ?? null
}

/**
 * Make `command` available, installing `debianPackage` with apt-get when it is missing.
 * Returns its path, to spawn it by (it may not be on PATH).
 */
export function ensureCommand(command: string, debianPackage: string): string {
  const known = installed.get(command) ?? locate(command)
  if (known) {
    installed.set(command, known)
    return known
  }
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo', '-n']
  const run = (args: string[]) => {
    const [file, ...rest] = [...asRoot, ...args]
    execFileSync(file!, rest, { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 })
  }
  try {
    run(['apt-get', 'update'])
    run(['apt-get', 'install', '-y', '--no-install-recommends', debianPackage])
  } catch (error) {
    throw new Error(`${command} is missing and installing the Debian package ${debianPackage} failed: ${(error as Error).message}`)
  }
  const path = locate(command)
  if (!path) throw new Error(`${command} is still missing after installing ${debianPackage}.`)
  installed.set(command, path)
  return path
}
