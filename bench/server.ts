/**
 * Where the benchmark runs: its own embedded PostgreSQL 15 (data folder .data/bench-embedded,
 * separate from the development server so that its databases never mix with yours), or the
 * server named by BENCH_ROOT_DATABASE_URL (a superuser connection to a maintenance database).
 *
 * Every measurement works in databases of its own, created here with a `bench_` prefix and a
 * per-run suffix, and dropped by `cleanup()` at the end (also after a failure or Ctrl-C).
 */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import pg from 'pg'
import { embeddedServerRunning, ensureEmbeddedServer, stopEmbeddedServer } from '../scripts/embedded/embedded-server.js'
import { registerUrlSecret } from '../lib/redact.js'
import { withClient } from '../lib/connection.js'

export { withClient }

export const PROJECT_ROOT = resolve(import.meta.dirname, '..')
export const BENCH_DATA_ROOT = resolve(PROJECT_ROOT, '.data', 'bench-embedded')

export interface BenchServer {
  /** Superuser URL of the maintenance database. */
  rootUrl: string
  /** URL of another database on the same server. */
  urlFor(database: string): string
  /** Create an empty database and remember it for cleanup. */
  createDatabase(label: string): Promise<string>
  /** Copy `template` (which must have no open connections) into a new database. */
  cloneDatabase(template: string, label: string): Promise<string>
  dropDatabase(name: string): Promise<void>
  /** Drop every database this run created; stop the server if this run started it. */
  cleanup(): Promise<void>
  /** Where the server came from, for the report. */
  description: string
}

export async function startBenchServer(log: (line: string) => void): Promise<BenchServer> {
  let rootUrl: string
  let startedHere = false
  let description: string
  if (process.env.BENCH_ROOT_DATABASE_URL) {
    rootUrl = process.env.BENCH_ROOT_DATABASE_URL
    registerUrlSecret(rootUrl)
    description = 'BENCH_ROOT_DATABASE_URL'
  } else {
    // The server is "ours" to stop at the end only if it was not already running.
    const wasRunning = embeddedServerRunning(BENCH_DATA_ROOT)
    log(`Starting the benchmark's embedded PostgreSQL in ${BENCH_DATA_ROOT} …`)
    // full_page_writes as production has it: the WAL figures include the full-page images.
    const server = await ensureEmbeddedServer(BENCH_DATA_ROOT, undefined, { fullPageWrites: true })
    rootUrl = server.url('postgres')
    startedHere = !wasRunning
    description = `embedded PostgreSQL (.data/bench-embedded, port ${server.port}${startedHere ? '' : ', already running'})`
  }
  const { rows } = await withClient(rootUrl, (c) => c.query(`select current_setting('full_page_writes') as fpw`))
  description += `, full_page_writes=${rows[0].fpw}`
  if (rows[0].fpw !== 'on') {
    log("full_page_writes is off on this server: WAL figures will be lower than production's (no full-page images).")
  }

  const urlFor = (database: string) => {
    const u = new URL(rootUrl)
    u.pathname = '/' + encodeURIComponent(database)
    return u.toString()
  }
  const suffix = randomBytes(3).toString('hex')
  const created = new Set<string>()
  const root = (fn: (c: pg.Client) => Promise<unknown>) => withClient(rootUrl, fn)

  const dropDatabase = async (name: string) => {
    await root((c) => c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`))
    created.delete(name)
  }

  return {
    rootUrl,
    urlFor,
    description,
    async createDatabase(label) {
      const name = `bench_${label}_${suffix}`
      await root((c) => c.query(`create database ${pg.escapeIdentifier(name)}`))
      created.add(name)
      return name
    },
    async cloneDatabase(template, label) {
      const name = `bench_${label}_${suffix}`
      // FILE_COPY copies the data files directly (one checkpoint) instead of WAL-logging
      // every block: seconds instead of minutes for a few GB.
      const sql = `create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(template)} strategy = file_copy`
      for (let attempt = 1; ; attempt++) {
        try {
          await root((c) => c.query(sql))
          break
        } catch (error) {
          // 55006: an autovacuum worker is in the template right now; it leaves soon.
          if ((error as { code?: string }).code !== '55006' || attempt >= 60) throw error
          await new Promise((r) => setTimeout(r, 1000))
        }
      }
      created.add(name)
      return name
    },
    dropDatabase,
    async cleanup() {
      for (const name of [...created]) await dropDatabase(name).catch((e) => log(`could not drop ${name}: ${e.message}`))
      if (startedHere) {
        log('Stopping the benchmark server (this run started it).')
        stopEmbeddedServer(BENCH_DATA_ROOT)
      }
    },
  }
}
