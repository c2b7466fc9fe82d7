/**
 * `npm run db:watch`: graphile-migrate's watch mode, run in this process through its library
 * API, with the hooks in the same process.
 *
 * Why not the graphile-migrate CLI: each save would then run the .gmrc `afterCurrent` action,
 * a new Node process that loads TypeScript (about 1.5 s) only to find, most of the time, that
 * the backfills have nothing to do. Here graphile-migrate applies current.sql and the hooks
 * run at once, already loaded. Plain `npx graphile-migrate watch` still works the slow way.
 *
 * Semantics kept from graphile-migrate's own watch: committed migrations are applied first;
 * current.sql is applied on start and on every save; the hooks run after an apply that
 * changed what current.sql does (graphile-migrate runs afterCurrent under the same rule).
 * The file is watched through its folder (inotify), so editors that save by rename, and
 * `git stash`, are seen too.
 */
import { watch as watchFolder } from 'node:fs'
import { join } from 'node:path'
import { Logger, watch as graphileWatch } from 'graphile-migrate'
import { getSettings } from 'graphile-migrate/dist/commands/_common.js'
import { withClient } from '../../lib/connection.js'
import { explain } from '../../lib/errors.js'
import { redact } from '../../lib/redact.js'
import { runHooks } from '../../hooks/run.js'
import type { DatabaseUrls } from './connection-settings.js'
import { pendingMigrationCount } from '../verify/applied-migrations.js'
import { completeOnlineSchema } from '../deploy/online-schema.js'
import { repairInvalidIndexes } from '../deploy/repair-invalid-indexes.js'

/** Saves closer together than this are applied once (editors write in several steps). */
const SETTLE_MS = 30

export interface WatchLoop {
  /** Resolves after the first apply (committed migrations, current.sql, hooks). */
  ready: Promise<void>
  stop(): void
}

/** graphile-migrate's log lines, through redact(), on stdout/stderr. */
const redactingLogger = new Logger(() => (level, message) => {
  const line = redact(message)
  if (level === 'error' || level === 'warning') console.error(line)
  else console.log(line)
})

async function currentBody(databaseUrl: string): Promise<string | null> {
  return withClient(databaseUrl, async (c) => {
    const { rows: exists } = await c.query(`select to_regclass('graphile_migrate.current') is not null as ok`)
    if (!exists[0].ok) return null
    const { rows } = await c.query(`select content from graphile_migrate.current where filename = 'current.sql'`)
    return rows[0]?.content ?? null
  })
}

export interface WatchOptions {
  /**
   * Traces current.sql (scripts/trace) and returns a one-line summary, or null when there is
   * nothing to trace. Run after every apply that changed what current.sql does; the line is
   * printed when it differs from the last one printed.
   */
  trace?: (sql: string) => Promise<string | null>
}

export function startWatchLoop(
  projectDir: string,
  urls: DatabaseUrls,
  log: (line: string) => void = console.log,
  opts: WatchOptions = {},
): WatchLoop {
  const folder = join(projectDir, 'migrations')
  const settingsPromise = getSettings({ configFile: join(projectDir, '.gmrc') }).then((s) => ({
    ...s,
    connectionString: urls.databaseUrl,
    shadowConnectionString: urls.shadowUrl,
    rootConnectionString: urls.rootUrl,
    logger: redactingLogger,
    // The hooks run below, in this process.
    afterCurrent: [],
  }))
  // graphile-migrate's deferrable actions (INVALID-index repair, hooks after committed
  // migrations) are done here instead; the flag makes their .gmrc launchers do nothing.
  process.env.MIGRATION_HOOKS_DEFERRED = '1'

  let running = false
  let again = false
  let lastTrace: string | null = null

  /** Trace `sql`: what was applied, not the file, which may have been saved again meanwhile. */
  async function printTrace(sql: string | null): Promise<void> {
    if (!opts.trace || sql === null) return
    try {
      const started = performance.now()
      const line = await opts.trace(sql)
      // What it costs the loop, on the line itself (the first save also builds the scratch database).
      if (line !== null && line !== lastTrace) log(`${line} [${Math.round(performance.now() - started)} ms]`)
      lastTrace = line
    } catch (error) {
      // The trace is advice: the loop goes on without it.
      log(redact(`trace: not available (${explain(error)})`))
    }
  }
  let timer: NodeJS.Timeout | undefined

  async function applyOnce(): Promise<void> {
    const settings = await settingsPromise
    const before = await currentBody(urls.databaseUrl)
    const pending = await withClient(urls.databaseUrl, async (client) => {
      const count = await pendingMigrationCount(client, folder)
      if (count > 0) await repairInvalidIndexes(client, log)
      return count
    })
    await graphileWatch(settings, true)
    // Also after a save: current.sql may queue an index build (ensure_index on a table with rows).
    await completeOnlineSchema(urls.databaseUrl, log)
    const after = await currentBody(urls.databaseUrl)
    if (pending === 0 && before !== null && before === after) return
    const hooks = await runHooks({ databaseUrl: urls.databaseUrl, shadow: false })
    if (!hooks.ok) log('Watching on; the hooks run again after the next save.')
    // Last: the save is applied and the hooks have run before the trace costs anything.
    await printTrace(after)
  }

  async function drain(): Promise<void> {
    if (running) {
      again = true
      return
    }
    running = true
    try {
      do {
        again = false
        try {
          await applyOnce()
        } catch (error) {
          // graphile-migrate has logged its own error; keep watching, as its watch does.
          log(redact(`current.sql was not applied: ${explain(error)}`))
        }
      } while (again)
    } finally {
      running = false
    }
  }

  const watcher = watchFolder(folder, (_event, filename) => {
    if (filename !== 'current.sql') return
    clearTimeout(timer)
    timer = setTimeout(() => void drain(), SETTLE_MS)
  })
  const ready = drain().then(() => log(`Watching ${join('migrations', 'current.sql')} for changes (Ctrl-C to stop)…`))
  return {
    ready,
    stop() {
      clearTimeout(timer)
      watcher.close()
    },
  }
}
