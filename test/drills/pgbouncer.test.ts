/**
 * Drill: DATABASE_URL through a real PgBouncer (Debian's package, installed here when
 * missing). In transaction pooling a client's statements may run on different server
 * sessions, so the deploy lock and session settings do not hold: every command refuses,
 * naming the fix, with nothing changed. In session pooling the same adoption just works.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { committedFiles, loadFixture, runDb } from '../helpers/drills.js'
import { ensureCommand } from '../helpers/system-commands.js'

const TIMEOUT = 600_000
const running: Array<{ child: ChildProcess; dir: string }> = []

afterAll(() => {
  for (const { child, dir } of running.splice(0)) {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
})

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })

/** A PgBouncer in front of the test server; returns `url` rewritten to go through it. */
async function startPgBouncer(url: string, mode: 'transaction' | 'session'): Promise<(u: string) => string> {
  const pgbouncer = ensureCommand('pgbouncer', 'pgbouncer')
  const server = new URL(url)
  const dir = mkdtempSync(join(tmpdir(), 'apt-pgbouncer-'))
  chmodSync(dir, 0o755)
  const port = await freePort()
  const user = decodeURIComponent(server.username)
  writeFileSync(join(dir, 'users.txt'), `"${user}" "${decodeURIComponent(server.password)}"\n`, { mode: 0o644 })
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = plain',
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      'default_pool_size = 4',
      'max_client_conn = 100',
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
    { mode: 0o644 },
  )
  chmodSync(join(dir, 'pgbouncer.ini'), 0o644)
  // PgBouncer refuses to run as root: as root it drops to the server's OS user.
  const args = userInfo().uid === 0 ? ['-u', 'postgres', join(dir, 'pgbouncer.ini')] : [join(dir, 'pgbouncer.ini')]
  // It logs to stderr (a log file would have to be writable by the user it drops to).
  const child = spawn(pgbouncer, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString()
  })
  running.push({ child, dir })
  const through = (u: string) => {
    const x = new URL(u)
    x.port = String(port)
    return x.toString()
  }
  for (let i = 0; i < 100; i++) {
    try {
      await withClient(through(url), (c) => c.query('select 1'))
      return through
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error(`PgBouncer did not start:\n${log}`)
}

describe('behind PgBouncer', () => {
  it('in transaction pooling every command refuses with the fix, and nothing changes', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('bouncer_tx')
    await loadFixture(db.databaseUrl)
    const through = await startPgBouncer(db.rootUrl, 'transaction')
    const env = { ...db.env, DATABASE_URL: through(db.databaseUrl) }
    for (const args of [['migrate'], ['migrate', '--schema-only'], ['backfill'], ['status']]) {
      const r = await runDb(args, env)
      expect(r.exitCode, `${args.join(' ')}: ${r.all}`).not.toBe(0)
      expect(r.all).toMatch(/transaction or statement pooling mode/)
      expect(r.all).toMatch(/direct connection to PostgreSQL, or a session-pooled URL/)
    }
    const schemas = await withClient(db.databaseUrl, (c) =>
      c.query(`select nspname from pg_namespace where nspname in ('graphile_migrate', 'migration_hooks')`),
    )
    expect(schemas.rows).toEqual([])
  })

  it('in session pooling the adoption runs through it', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('bouncer_session')
    await loadFixture(db.databaseUrl)
    const through = await startPgBouncer(db.rootUrl, 'session')
    const env = { ...db.env, DATABASE_URL: through(db.databaseUrl) }
    const r = await runDb(['migrate'], env)
    expect(r.exitCode, r.all).toBe(0)
    expect(r.all).toMatch(new RegExp(`Applied ${committedFiles().length} migration\\(s\\)`))
    expect((await runDb(['status'], env)).exitCode).toBe(0)
  })
})
