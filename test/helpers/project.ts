/**
 * Running the real CLIs (graphile-migrate, our npm scripts) from tests, and scratch copies of
 * the project for tests that change migrations (commit/uncommit, a tampered file).
 */
import { cpSync, mkdtempSync, mkdirSync, symlinkSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll } from 'vitest'
import { execa, type Options } from 'execa'

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..')

/** Environment without the developer's own database settings. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'GM_DBURL', 'GM_SHADOW', 'MIGRATION_HOOKS_DEFERRED'])
    delete env[k]
  return { ...env, ...extra }
}

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  all: string
}

/** Run a locally installed CLI (node_modules/.bin) with only the given database settings. */
async function runCli(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, options: Options): Promise<CliResult> {
  const r = await execa(command, args, {
    cwd,
    env: cleanEnv(env),
    extendEnv: false,
    preferLocal: true,
    localDir: PROJECT_ROOT,
    reject: false,
    all: true,
    ...options,
  })
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), all: String(r.all) }
}

export function graphileMigrate(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT, options: Options = {}): Promise<CliResult> {
  return runCli('graphile-migrate', args, env, cwd, options)
}

/**
 * How the tests start one of our TypeScript scripts: one Node process with tsx's loader, as
 * the npm scripts and gm-action.mjs do. The `tsx` command would start a second Node process
 * (about 0.6 s of CPU more per call, hundreds of calls per suite on two cores).
 */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
export const nodeWithTsx = (script: string, args: string[]): [string, string[]] => [
  process.execPath,
  ['--import', TSX_LOADER, join(PROJECT_ROOT, script), ...args],
]

/** Run one of our TypeScript scripts (our own CLIs) with the given environment. */
export function tsxScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = PROJECT_ROOT,
  options: Options = {},
): Promise<CliResult> {
  return runCli(...nodeWithTsx(script, args), env, cwd, options)
}

const copies: string[] = []

/**
 * A scratch copy of the project: its own .gmrc, migrations and schema folder (so commit,
 * uncommit and tampering never touch this checkout), sharing code and node_modules by symlink.
 */
export function projectCopy(): string {
  mkdirSync(join(PROJECT_ROOT, '.tmp'), { recursive: true })
  const dir = mkdtempSync(join(PROJECT_ROOT, '.tmp', 'project-'))
  for (const f of ['.gmrc', 'package.json', 'migrations', 'schema']) cpSync(join(PROJECT_ROOT, f), join(dir, f), { recursive: true })
  for (const f of ['node_modules', 'lib', 'scripts', 'hooks', 'tsconfig.json']) symlinkSync(join(PROJECT_ROOT, f), join(dir, f))
  copies.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true })
})
