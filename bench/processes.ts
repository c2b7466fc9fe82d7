/**
 * Child processes the benchmark runs: the real graphile-migrate CLI, our own tsx scripts
 * (db.ts, the hook runner wrapper, the writer), always with an environment that holds only
 * the connection settings we choose — never the developer's own DATABASE_URL or HOOKS_*.
 */
import { execa } from 'execa'
import { join } from 'node:path'
import { redact } from '../lib/redact.js'
import { PROJECT_ROOT } from './server.js'

/** Variables that would change what a child connects to or how the hooks behave. */
const STRIPPED =
  /^(DATABASE_URL|SHADOW_DATABASE_URL|ROOT_DATABASE_URL|GM_DBURL|GM_SHADOW|MIGRATION_HOOKS_DEFERRED|SKIP_SCHEMA_DUMP|HOOKS_.*|ACCOUNT_MAPPING_FILE|EMBEDDED_PG_DIR)$/

export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!STRIPPED.test(k)) env[k] = v
  return { ...env, ...extra }
}

/** The three URLs graphile-migrate and db.ts read. */
export function urlEnv(databaseUrl: string, shadowUrl: string, rootUrl: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return cleanEnv({ DATABASE_URL: databaseUrl, SHADOW_DATABASE_URL: shadowUrl, ROOT_DATABASE_URL: rootUrl, ...extra })
}

export interface Finished {
  exitCode: number
  output: string
  ms: number
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  return execa(file, args, { cwd, env, extendEnv: false, preferLocal: true, localDir: PROJECT_ROOT, reject: false, all: true })
}

type Child = ReturnType<typeof run>

async function timed(child: Child): Promise<Finished> {
  const started = performance.now()
  const r = await child
  return { exitCode: r.exitCode ?? -1, output: redact(String(r.all ?? '')), ms: performance.now() - started }
}

/** `graphile-migrate <args>` in `cwd` (default: the project). */
export function graphileMigrate(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<Finished> {
  return timed(run('graphile-migrate', args, env, cwd))
}

/**
 * Our TypeScript script `script` (relative to the project root) with `args`, started as the
 * npm scripts start it: one Node process with tsx's loader (`node --import tsx`).
 */
const tsxArgs = (script: string, args: string[]) => ['--import', 'tsx', join(PROJECT_ROOT, script), ...args]

export function tsx(script: string, args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<Finished> {
  return timed(run(process.execPath, tsxArgs(script, args), env, cwd))
}

/** Start a script and hand back the live child (for the writer, which is stopped by signal). */
export function startTsx(script: string, args: string[], env: NodeJS.ProcessEnv): Child {
  return run(process.execPath, tsxArgs(script, args), env, PROJECT_ROOT)
}

/** Throw with the child's output when it failed. */
export function check(what: string, r: Finished): Finished {
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}):\n${r.output}`)
  return r
}
