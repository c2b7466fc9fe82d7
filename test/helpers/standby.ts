/**
 * A streaming standby of a private embedded server (private-server.ts), as an operator makes
 * one: Debian's `pg_basebackup -R` (postgresql-client, installed when missing, like pg_dump),
 * started with the embedded package's own `postgres` on another port. It runs as the same OS
 * user as its primary (under root: the `postgres` user, in the primary's cluster folder, which
 * that user owns), listens on 127.0.0.1 only and has no Unix socket.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { withClient } from '../../lib/connection.js'
import { ensureEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { chownTo, placementFor, runServerBinary, SUPERUSER, type Placement } from '../../scripts/embedded/embedded-placement.js'
import { waitFor } from './drills.js'
import { ensureCommand } from './system-commands.js'

export interface Standby {
  /** Superuser URL of the standby's `postgres` database. */
  url: string
  /** application_name the standby's walreceiver reports (pg_stat_replication). */
  applicationName: string
  /** Pause replay once the standby has replayed all the primary wrote, and wait until it is paused; returns the LSN replay stopped at. */
  pauseReplay(): Promise<string>
  resumeReplay(): Promise<void>
  /** Stop the standby's server at once (as a standby host going away), and wait for its walsender to leave. */
  stop(): Promise<void>
  /** Stop it if it runs, and delete its folder. */
  remove(): void
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/** The primary's walsenders that stream to a standby right now. */
export async function streamingStandbys(primaryUrl: string): Promise<number> {
  return withClient(primaryUrl, async (c) => {
    const { rows } = await c.query(`select count(*)::int as n from pg_stat_replication where state = 'streaming'`)
    return rows[0].n as number
  })
}

export async function startStandby(dataRoot: string): Promise<Standby> {
  ensureCommand('pg_basebackup', 'postgresql-client')
  const primary = await ensureEmbeddedServer(dataRoot)
  const place = placementFor(dataRoot)
  const root = join(place.clusterRoot, 'standby')
  const standby: Placement = { ...place, pgdata: join(root, 'pgdata'), logFile: join(root, 'postgres.log') }
  const stopServer = () => {
    if (existsSync(join(standby.pgdata, 'postmaster.pid'))) {
      runServerBinary(standby, 'pg_ctl', ['stop', '-D', standby.pgdata, '-m', 'immediate', '-w', '-t', '60'])
    }
  }
  // A standby a killed earlier run left behind.
  stopServer()
  rmSync(root, { recursive: true, force: true })
  mkdirSync(root, { mode: 0o700 })
  chmodSync(root, 0o700)
  chownTo(root, place.user)
  const applicationName = 'throttle_test_standby'
  const base = spawnSync(
    'pg_basebackup',
    ['-h', '127.0.0.1', '-p', String(primary.port), '-U', SUPERUSER, '-D', standby.pgdata, '-R', '-X', 'stream', '-c', 'fast'],
    {
      uid: place.user.uid,
      gid: place.user.gid,
      encoding: 'utf8',
      // The password reaches pg_basebackup by its environment only; -R writes it into the
      // standby's own 0600 postgresql.auto.conf, inside this 0700 folder.
      env: { PATH: process.env.PATH, PGPASSWORD: primary.password, PGAPPNAME: applicationName, LC_ALL: 'C' },
    },
  )
  if (base.status !== 0) throw new Error(`pg_basebackup failed (exit ${base.status}): ${base.stderr || base.error?.message}`)
  const port = await freePort()
  const options = [
    `-p ${port}`,
    "-c listen_addresses='127.0.0.1'",
    "-c unix_socket_directories=''",
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c hot_standby=on',
    // A standby refuses to replay with fewer connections than its primary has (embedded-server.ts: 200).
    '-c max_connections=200',
    // The walreceiver names itself in pg_stat_replication, as `cluster_name` would in production.
    `-c cluster_name=${applicationName}`,
  ].join(' ')
  runServerBinary(standby, 'pg_ctl', ['start', '-D', standby.pgdata, '-l', standby.logFile, '-w', '-t', '60', '-o', options])
  const url = `postgres://${SUPERUSER}:${encodeURIComponent(primary.password)}@127.0.0.1:${port}/postgres`
  await waitFor(async () => (await streamingStandbys(primary.url('postgres'))) > 0, {
    what: 'the standby to stream from the primary',
    timeoutMs: 60_000,
    intervalMs: 100,
  })
  return {
    url,
    applicationName,
    async pauseReplay() {
      // Caught up first: WAL written before (a database copied from a template) is not the test's.
      const target = await withClient(
        primary.url('postgres'),
        async (c) => (await c.query('select pg_current_wal_lsn()::text as l')).rows[0].l,
      )
      await waitFor(
        () => withClient(url, async (c) => (await c.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [target])).rows[0].ok),
        { what: 'the standby to replay what the primary wrote', timeoutMs: 60_000 },
      )
      await withClient(url, (c) => c.query('select pg_wal_replay_pause()'))
      return waitFor(
        () =>
          withClient(url, async (c) => {
            const { rows } = await c.query(
              `select pg_get_wal_replay_pause_state() = 'paused' as paused, pg_last_wal_replay_lsn()::text as lsn`,
            )
            return rows[0].paused ? (rows[0].lsn as string) : null
          }),
        { what: "the standby's replay to pause", timeoutMs: 30_000 },
      )
    },
    async resumeReplay() {
      await withClient(url, (c) => c.query('select pg_wal_replay_resume()'))
    },
    async stop() {
      stopServer()
      await waitFor(async () => (await streamingStandbys(primary.url('postgres'))) === 0, {
        what: "the stopped standby's walsender to leave pg_stat_replication",
        timeoutMs: 60_000,
        intervalMs: 100,
      })
    },
    remove() {
      stopServer()
      rmSync(root, { recursive: true, force: true })
    },
  }
}
