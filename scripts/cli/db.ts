/**
 * `npm run db:<command>` entry point. Resolves where to connect (the three URLs, or the
 * embedded server), then drives the real graphile-migrate CLI and our hooks.
 *
 *   migrate   apply pending committed migrations (under the deploy lock), then run/resume the
 *             backfills unless another process runs them or --schema-only; print what ran.
 *             --plan: change nothing; print pending migrations, index builds, validations, backfills.
 *             Refuses, with nothing changed, when the committed chain on disk is broken (CRLF,
 *             edited, missing files), a backfill setting or the mapping file is invalid, or the
 *             role cannot create/alter what the pending migrations need (guards/preflight.ts)
 *   backfill  run/resume every unfinished backfill to completion; SIGTERM stops after a batch
 *   watch     re-apply migrations/current.sql on every save; a one-line trace when it changes
 *   commit    move current.sql into the committed chain (args passed through, e.g. --message),
 *             after tracing it: refused when it would stall the proxy on the hot tables
 *   trace     run a migration (default current.sql) in a rolled-back transaction on the shadow
 *             database with the chain and sample rows; per table: lock, rewrite, rows, queued work
 *   uncommit  move the last committed migration back into current.sql
 *   reset     drop and rebuild the database from the chain (development only; --drop-data when
 *             it holds application rows)
 *   status    pending migrations, current.sql, unfinished backfills; non-zero when not clean
 *   schema    rebuild the shadow database and rewrite schema/schema.sql
 *   verify    check committed files against their hashes and the database's record
 *   drift     compare the database with a fresh build of the chain (--json for machines)
 *   url       print the connection strings (password hidden unless --show-password)
 *   env       export lines for `eval "$(npm run -s db:env)"`: plain graphile-migrate uses the same databases
 *   stop      stop the embedded server
 */
import { join } from 'node:path'
import type pg from 'pg'
import { resolveDatabaseUrls, childEnv, EMBEDDED_DATA_ROOT, type DatabaseUrls } from '../graphile/connection-settings.js'
import { stopEmbeddedServer } from '../embedded/embedded-server.js'
import { runGraphileMigrate } from '../graphile/graphile-cli.js'
import { reportFatal, UserError } from '../../lib/errors.js'
import { redactUrl } from '../../lib/redact.js'
import { holdOnlineStep, withDeployLock } from '../deploy/deploy-lock.js'
import { appliedMigrations, pendingMigrationCount } from '../verify/applied-migrations.js'
import { repairInvalidIndexes } from '../deploy/repair-invalid-indexes.js'
import { completeOnlineSchema } from '../deploy/online-schema.js'
import { migrationPlan } from '../deploy/migration-plan.js'
import { assertResettable, assertShadowIsSafe } from '../guards/shadow-guard.js'
import { assertSessionConnection } from '../guards/pooler-check.js'
import { BACKFILLS } from '../../hooks/backfills/index.js'
import { shellExports } from '../graphile/shell-exports.js'
import { runHooks, hookStatus } from '../../hooks/run.js'
import { verify, printVerifyReport, migrationsFolderOf } from '../verify/verify.js'
import { readCommittedChain } from '../verify/chain.js'
import { lockRetries, withLockRetries } from '../deploy/lock-retries.js'
import { checkCommittedChain, checkHookInputs, checkPrivileges, graphileFailureAdvice } from '../guards/preflight.js'
import { redact } from '../../lib/redact.js'
import { traceFile, watchTracer } from '../trace/trace-file.js'

/**
 * The project graphile-migrate works in: the folder holding .gmrc and migrations/. npm runs
 * scripts from the package root; tests run them in scratch copies of the project.
 */
const PROJECT_DIR = process.cwd()

/** A shadow URL that is named but never connected to (see `status`). */
function placeholderShadowUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl)
  u.pathname = `${u.pathname}_shadow_unused`
  return u.toString()
}

type Command = (urls: DatabaseUrls, args: string[]) => Promise<number>

const gm = async (urls: DatabaseUrls, args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
  const result = await runGraphileMigrate(args, { cwd: PROJECT_DIR, env: childEnv(urls, extraEnv) })
  // graphile-migrate's own message is above (stack trace only with DEBUG); say what to do.
  // (`status` reports through its exit code, and `watch` ends with Ctrl-C: neither failed.)
  if (result.exitCode !== 0 && !['status', 'watch'].includes(args[0] ?? ''))
    process.stderr.write(redact(graphileFailureAdvice(args[0] ?? '', result.output)) + '\n')
  return result
}

/**
 * The schema step of db:migrate, run under the deploy lock: INVALID-index repair, the pending
 * committed migrations (graphile-migrate itself), and a list of what was applied. The online
 * step (concurrent index builds, validations) comes after it, outside the deploy lock.
 */
async function schemaStep(
  urls: DatabaseUrls,
  folder: string,
  gmArgs: string[],
  lockSession: pg.ClientBase,
): Promise<{ exitCode: number; applied: number }> {
  // Every question of this step goes through the deploy-lock session: one connection per deploy.
  const before = new Set((await appliedMigrations(lockSession)).map((m) => m.filename))
  const pending = await pendingMigrationCount(lockSession, folder)
  await checkPrivileges(lockSession, pending, PROJECT_DIR)
  // Another deploy's online step may be building an index for hours (it holds no deploy
  // lock): a migration altering that table now would wait behind the build, and the proxy's
  // writes behind the migration. Pending migrations run only while no online step does.
  if (pending > 0) await holdOnlineStep(lockSession)
  // The .gmrc actions around the migrations run here, in this process, and the flag tells
  // graphile-migrate's copies of them to do nothing (scripts/graphile/gm-action.mjs): the
  // INVALID-index repair before (graphile-migrate runs it only when something is pending, so
  // do we; the deploy lock keeps another deploy from building meanwhile), and the hooks after.
  if (pending > 0) await repairInvalidIndexes(lockSession)
  const result = await withLockRetries(() => gm(urls, ['migrate', ...gmArgs], { MIGRATION_HOOKS_DEFERRED: '1' }), {
    retries: lockRetries(),
    beforeRetry: async () => {
      await repairInvalidIndexes(lockSession)
    },
  })
  if (result.exitCode !== 0) return { exitCode: result.exitCode, applied: 0 }
  const applied = (await appliedMigrations(lockSession)).filter((m) => !before.has(m.filename))
  if (applied.length) {
    // graphile-migrate records only the number; show the committed file's full name.
    const names = new Map(readCommittedChain(folder).map((m) => [m.filename.slice(0, 6), m.filename]))
    console.log(`Applied ${applied.length} migration(s):`)
    for (const m of applied) console.log(`  ${names.get(m.filename.slice(0, 6)) ?? m.filename}`)
  } else {
    console.log('Migrations: already up to date.')
  }
  return { exitCode: 0, applied: applied.length }
}

const commands: Record<string, Command> = {
  async migrate(urls, args) {
    if (args.includes('--plan')) {
      for (const line of await migrationPlan(urls.databaseUrl, migrationsFolderOf(PROJECT_DIR), BACKFILLS)) console.log(line)
      return 0
    }
    const schemaOnly = args.includes('--schema-only') || process.env.MIGRATE_SCHEMA_ONLY === '1'
    const gmArgs = args.filter((a) => a !== '--schema-only')
    // Refuse before changing anything: a broken chain on disk, or invalid backfill settings,
    // would otherwise stop the deploy halfway. A schema-only deploy does not run the
    // backfills, so their input (the mapping file) cannot stop it.
    const folder = migrationsFolderOf(PROJECT_DIR)
    checkCommittedChain(folder)
    if (!schemaOnly) await checkHookInputs()
    // The deploy lock covers the migrations only: a second replica waits seconds, not the
    // hours an index build or a backfill can take on a big table.
    const schema = await withDeployLock(urls.databaseUrl, (lockSession) => schemaStep(urls, folder, gmArgs, lockSession))
    if (schema.exitCode !== 0) return schema.exitCode
    // Every time, not only after new migrations: a build interrupted last time is finished now.
    // Under its own lock; when another process holds it, that process finishes the schema
    // (and then runs the backfills, unless it is a schema-only job): this one is done.
    const online = await completeOnlineSchema(urls.databaseUrl)
    if (online.busy) {
      console.log(
        'Backfills: not started here — they begin once the online schema step is complete (that process runs them, ' +
          'or the next `npm run db:migrate` / `npm run db:backfill`).',
      )
      return 0
    }
    if (schemaOnly) {
      console.log('Backfills: not run (--schema-only / MIGRATE_SCHEMA_ONLY=1); `npm run db:backfill` runs them.')
      for (const line of (await hookStatus(urls.databaseUrl)).lines) console.log(line)
      return 0
    }
    // Under the hooks lock, taken without waiting: when another process is already running
    // the backfills, say where they stand and leave them to it.
    const hooks = await runHooks({ databaseUrl: urls.databaseUrl, shadow: false, ifBusy: 'report', schemaChanged: schema.applied > 0 })
    return hooks.ok ? 0 : 1
  },
  async backfill(urls, args) {
    // The long-running runner: every unfinished backfill to completion, with progress. The
    // first SIGTERM/SIGINT lets the current batch commit, records where it stopped and exits 0.
    let stop: string | undefined
    let stopAt = 0
    const onSignal = (signal: NodeJS.Signals) => {
      // One Ctrl-C or `kill` often arrives twice: from the terminal or the process group, and
      // relayed by npm or tsx. Only a second signal a moment later means "stop now".
      if (stop) {
        if (Date.now() - stopAt > 2000) process.exit(130) // the open batch rolls back
        return
      }
      stop = signal
      stopAt = Date.now()
      console.log(`${signal}: finishing the current batch, then stopping (send it again to stop at once)…`)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    const only = args
      .find((a) => a.startsWith('--only='))
      ?.slice('--only='.length)
      .split(',')
    const hooks = await runHooks({
      databaseUrl: urls.databaseUrl,
      shadow: false,
      // Busy: help the running row pass (HOOKS_WORKERS sessions), else report where it stands.
      ifBusy: args.includes('--wait') ? 'wait' : 'join',
      schemaChanged: false,
      only,
      shouldStop: () => stop,
    })
    return hooks.ok ? 0 : 1
  },
  async watch(urls, args) {
    // `--once` and `--shadow` are graphile-migrate's own; the CLI serves them as before.
    if (args.length) {
      await assertShadowIsSafe(urls, 'db:watch')
      return (await gm(urls, ['watch', ...args])).exitCode
    }
    // Loaded here only: graphile-migrate's library (watch) is a large module tree that the
    // other commands, which run graphile-migrate as a child process, never need.
    const { startWatchLoop } = await import('../graphile/watch-loop.js')
    // After a save that changes what current.sql does: one line on what it does to the hot
    // tables (scripts/trace), when there is a shadow database to trace on.
    const trace = urls.shadowUrl && urls.rootUrl ? watchTracer(urls, PROJECT_DIR) : undefined
    const loop = startWatchLoop(PROJECT_DIR, urls, console.log, { trace })
    await loop.ready
    // Runs until Ctrl-C / SIGTERM, like graphile-migrate's watch.
    return new Promise<number>((resolveExit) => {
      const stop = () => {
        loop.stop()
        resolveExit(0)
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
  },
  async env(urls) {
    // For `eval "$(npm run -s db:env)"`: points plain `npx graphile-migrate …` (and psql) at
    // the same databases as the npm scripts. The embedded server's password goes into a
    // pgpass file beside its data, never onto the terminal.
    for (const line of shellExports(urls)) console.log(line)
    return 0
  },
  async commit(urls, args) {
    await assertShadowIsSafe(urls, 'db:commit')
    // Before it joins the chain: what current.sql does to the hot tables on a database with
    // rows. A migration that would stall the proxy is refused, with nothing committed.
    const checked = await traceFile(urls, PROJECT_DIR, join(migrationsFolderOf(PROJECT_DIR), 'current.sql'), 'db:commit')
    if (!checked.empty) for (const line of checked.lines) console.log(line)
    if (checked.trace.error) {
      console.error(
        'Not committed: current.sql fails on the committed chain with rows in the hot tables (above); a deploy would fail the same way.',
      )
      return 1
    }
    if (checked.verdict.stalls.length) {
      console.error('Not committed: current.sql would stall the proxy on production-sized tables (STALL lines above, each with its fix).')
      return 1
    }
    return (await gm(urls, ['commit', ...args])).exitCode
  },
  async trace(urls, args) {
    const file = args.find((a) => !a.startsWith('-')) ?? join(migrationsFolderOf(PROJECT_DIR), 'current.sql')
    const result = await traceFile(urls, PROJECT_DIR, file, 'db:trace')
    for (const line of result.lines) console.log(line)
    return result.trace.error || result.verdict.stalls.length ? 1 : 0
  },
  async uncommit(urls, args) {
    await assertShadowIsSafe(urls, 'db:uncommit')
    return (await gm(urls, ['uncommit', ...args])).exitCode
  },
  async reset(urls, args) {
    if (process.env.NODE_ENV === 'production')
      throw new UserError('db:reset drops the database; it refuses to run with NODE_ENV=production.')
    await assertResettable(urls, args.includes('--drop-data'))
    await assertShadowIsSafe(urls, 'db:reset')
    const gmArgs = args.filter((a) => a !== '--drop-data')
    const result = await gm(urls, ['reset', '--erase', ...gmArgs], { MIGRATION_HOOKS_DEFERRED: '1' })
    if (result.exitCode !== 0) return result.exitCode
    return (await runHooks({ databaseUrl: urls.databaseUrl, shadow: false })).ok ? 0 : 1
  },
  async schema(urls) {
    await assertShadowIsSafe(urls, 'db:schema')
    // Rebuild the shadow database from the committed chain; its shadow-only action rewrites
    // schema/schema.sql (see .gmrc).
    return (await gm(urls, ['reset', '--shadow', '--erase'])).exitCode
  },
  async status(urls, args) {
    // graphile-migrate's status insists on a shadow URL although it never connects to it; a
    // production deploy that sets only DATABASE_URL gets a placeholder so status still works.
    const statusUrls = urls.shadowUrl ? urls : { ...urls, shadowUrl: placeholderShadowUrl(urls.databaseUrl) }
    const result = await gm(statusUrls, ['status', ...args])
    const hooks = await hookStatus(urls.databaseUrl)
    for (const line of hooks.lines) console.log(line)
    // graphile-migrate's bitmap (1 pending, 2 current.sql not empty) plus 4: a backfill is
    // unfinished or failed.
    return result.exitCode | (hooks.clean ? 0 : 4)
  },
  async verify(urls) {
    return printVerifyReport(await verify(urls.databaseUrl, migrationsFolderOf(PROJECT_DIR)))
  },
  async drift(urls, args) {
    if (!urls.shadowUrl || !urls.rootUrl) {
      throw new UserError('db:drift builds the committed chain on the shadow database: set SHADOW_DATABASE_URL and ROOT_DATABASE_URL.')
    }
    await assertShadowIsSafe(urls, 'db:drift')
    const json = args.includes('--json')
    // Build the chain from scratch on the shadow database (quietly in --json mode: the last
    // line must be the JSON object).
    const build = await runGraphileMigrate(['reset', '--shadow', '--erase'], {
      cwd: PROJECT_DIR,
      env: childEnv(urls, { SKIP_SCHEMA_DUMP: '1' }),
      quiet: true,
    })
    if (build.exitCode !== 0) {
      console.error(build.output)
      throw new UserError('db:drift could not build the committed chain on the shadow database (output above).')
    }
    // Loaded here only: @pgkit/migra takes about half a second of CPU to load, which every
    // other command (each deploy, each status call) would pay for nothing.
    const { diffSchemas, printDriftReport } = await import('../drift/drift.js')
    return printDriftReport(await diffSchemas(urls.databaseUrl, urls.shadowUrl), json)
  },
  async url(urls, args) {
    const show = args.includes('--show-password')
    const out = (u?: string) => (u ? (show ? u : redactUrl(u)) : '(not set)')
    console.log(`DATABASE_URL=${out(urls.databaseUrl)}`)
    console.log(`SHADOW_DATABASE_URL=${out(urls.shadowUrl)}`)
    console.log(`ROOT_DATABASE_URL=${out(urls.rootUrl)}`)
    if (!show && urls.embedded) {
      console.log(`# password hidden; it is in ${EMBEDDED_DATA_ROOT}/server.json, or run: npm run db:url -- --show-password`)
    }
    return 0
  },
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === 'stop') {
    const stopped = stopEmbeddedServer(process.env.EMBEDDED_PG_DIR ?? EMBEDDED_DATA_ROOT)
    console.log(stopped ? 'Embedded PostgreSQL stopped.' : 'Embedded PostgreSQL was not running.')
    return 0
  }
  const command = name ? commands[name] : undefined
  if (!command) {
    console.error(`Unknown command "${name ?? ''}". Use one of: ${[...Object.keys(commands), 'stop'].join(', ')}.`)
    return 2
  }
  const urls = await resolveDatabaseUrls()
  // Everything but printing the URLs relies on real sessions (locks, settings).
  if (!urls.embedded && !['url', 'env'].includes(name)) await assertSessionConnection(urls.databaseUrl)
  return command(urls, args)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => process.exit(reportFatal(error)),
)
