/**
 * Tools some tests need from the operating system (pg_dump and psql for dump/restore
 * round trips). A fresh machine may lack them: the test installs the Debian package then,
 * as the README's one test command must work on a new machine.
 */
import { execFileSync, spawnSync } from 'node:child_process'

const installed = new Set<string>()

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** Make `command` available, installing `debianPackage` with apt-get when it is missing. */
export function ensureCommand(command: string, debianPackage: string): void {
  if (installed.has(command) || has(command)) return
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
  if (!has(command)) throw new Error(`${command} is still missing after installing ${debianPackage}.`)
  installed.add(command)
}
