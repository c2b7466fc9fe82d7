#!/usr/bin/env node
/**
 * Launcher for the TypeScript actions that .gmrc asks graphile-migrate to run:
 *
 *   node scripts/graphile/gm-action.mjs [--deferrable] <script.ts> [args…]
 *
 * Plain JavaScript on purpose, because it decides cheaply whether there is anything to do:
 *
 *  - A --deferrable action is skipped when MIGRATION_HOOKS_DEFERRED=1: the caller (`npm run db:migrate` / `db:reset`, which run
 *    the INVALID-index repair and the backfills themselves, in-process, under the deploy lock)
 *    has already done or will do this work, so the launcher exits at once. Starting the
 *    TypeScript loader only to learn that cost about a second per action, a third of the
 *    migrate-from-empty budget.
 *  - Otherwise it runs the script in one Node process with tsx's loader (`node --import tsx`),
 *    not through the `tsx` command, which would start a second Node process.
 *
 * The exit code and the output are the script's own.
 */
import { spawnSync } from 'node:child_process'

const argv = process.argv.slice(2)
const deferrable = argv[0] === '--deferrable'
const [script, ...args] = deferrable ? argv.slice(1) : argv
if (!script) {
  console.error('Usage: node scripts/graphile/gm-action.mjs [--deferrable] <script.ts> [args…]')
  process.exit(2)
}
if (deferrable && process.env.MIGRATION_HOOKS_DEFERRED === '1') {
  console.log(`${script}: deferred to the db:migrate wrapper`)
  process.exit(0)
}
// Resolve tsx from this project's node_modules, whatever the working directory.
const tsx = import.meta.resolve('tsx')
const run = spawnSync(process.execPath, ['--import', tsx, script, ...args], { stdio: 'inherit' })
if (run.error) {
  console.error(`${script}: could not start Node: ${run.error.message}`)
  process.exit(1)
}
process.exit(run.status ?? 1)
