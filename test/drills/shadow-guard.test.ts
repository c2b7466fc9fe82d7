/**
 * Drill: only the shadow can be dropped. A shadow URL on another server with the real
 * database's name made graphile-migrate drop the real database (it drops the shadow's name
 * through the root connection). Every command that rebuilds the shadow now checks the
 * servers' identity first; db:reset refuses a database with rows unless told --drop-data.
 * A second embedded PostgreSQL plays "the other server".
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureEmbeddedServer, type EmbeddedServer, stopEmbeddedServer } from '../../scripts/embedded/embedded-server.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { checksums, loadFixture, runDb } from '../helpers/drills.js'
import { projectCopy } from '../helpers/project.js'

const TIMEOUT = 600_000
let otherRoot: string
let other: EmbeddedServer

beforeAll(async () => {
  otherRoot = mkdtempSync(join(tmpdir(), 'apt-other-server-'))
  // Reachable by the server's OS user, so the cluster stays here (and goes with rmSync below).
  chmodSync(otherRoot, 0o755)
  other = await ensureEmbeddedServer(join(otherRoot, 'pg'))
}, TIMEOUT)

afterAll(() => {
  stopEmbeddedServer(join(otherRoot, 'pg'))
  rmSync(otherRoot, { recursive: true, force: true })
})

const databaseName = (url: string) => new URL(url).pathname.slice(1)

describe('only the shadow can be dropped', () => {
  it('refuses every shadow rebuild when the shadow URL names another server; the real database survives', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await createTestDatabases('guard_other')
    await loadFixture(db.databaseUrl)
    const before = await checksums(db.databaseUrl)
    // The same database name, on the other server: graphile-migrate would drop it on the root one.
    const env = { ...db.env, SHADOW_DATABASE_URL: other.url(databaseName(db.databaseUrl)) }
    const dir = projectCopy()
    for (const args of [['drift'], ['schema'], ['commit', '--message', 'x'], ['uncommit'], ['reset', '--drop-data']]) {
      const r = await runDb(args, env, dir)
      expect(r.exitCode, `${args[0]}: ${r.all}`).not.toBe(0)
      expect(r.all).toMatch(/refused, nothing was dropped: SHADOW_DATABASE_URL and ROOT_DATABASE_URL reach different PostgreSQL servers/)
    }
    expect(await checksums(db.databaseUrl)).toEqual(before)
  })

  it('refuses every shadow rebuild when ROOT_DATABASE_URL is unset; the real database survives', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('guard_noroot')
    await loadFixture(db.databaseUrl)
    const before = await checksums(db.databaseUrl)
    // graphile-migrate would use "template1" on the server the PG* variables name — here the
    // real database's — and drop the shadow's name, the real database's, there.
    const real = new URL(db.databaseUrl)
    const env = {
      ...db.env,
      ROOT_DATABASE_URL: '',
      SHADOW_DATABASE_URL: other.url(databaseName(db.databaseUrl)),
      PGHOST: real.hostname,
      PGPORT: real.port,
      PGUSER: decodeURIComponent(real.username),
      PGPASSWORD: decodeURIComponent(real.password),
    }
    const dir = projectCopy()
    for (const args of [['drift'], ['schema'], ['commit', '--message', 'x'], ['uncommit']]) {
      const r = await runDb(args, env, dir)
      expect(r.exitCode, `${args[0]}: ${r.all}`).not.toBe(0)
      expect(r.all).toMatch(
        /refused, nothing was dropped: SHADOW_DATABASE_URL is set but ROOT_DATABASE_URL is not|set SHADOW_DATABASE_URL and ROOT_DATABASE_URL/,
      )
      expect(r.all).not.toContain(decodeURIComponent(real.password))
    }
    expect(await checksums(db.databaseUrl)).toEqual(before)
  })

  it('refuses a shadow that is the real database under another host name', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('guard_same')
    await loadFixture(db.databaseUrl)
    const before = await checksums(db.databaseUrl)
    // Another name for this server that no host-string comparison knows: the machine's own
    // host name where it resolves to the loopback address (else localhost).
    const alias = (await lookup(hostname()).catch(() => null))?.address.startsWith('127.') ? hostname() : 'localhost'
    const shadow = new URL(db.databaseUrl)
    shadow.hostname = alias
    const env = { ...db.env, SHADOW_DATABASE_URL: shadow.toString() }
    const r = await runDb(['drift'], env)
    expect(r.exitCode).not.toBe(0)
    expect(r.all).toMatch(/nothing was dropped|same database as DATABASE_URL/)
    expect(await checksums(db.databaseUrl)).toEqual(before)
  })

  it('db:reset refuses a database holding application rows unless --drop-data', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('guard_reset')
    await loadFixture(db.databaseUrl)
    const before = await checksums(db.databaseUrl)
    const refused = await runDb(['reset'], db.env)
    expect(refused.exitCode).not.toBe(0)
    expect(refused.all).toMatch(/db:reset refused, nothing was dropped: .* holds application rows \(.*public\.api_requests/)
    expect(refused.all).toMatch(/--drop-data/)
    expect(await checksums(db.databaseUrl)).toEqual(before)
    const dropped = await runDb(['reset', '--drop-data'], db.env)
    expect(dropped.exitCode, dropped.all).toBe(0)
    const rows = await withClient(db.databaseUrl, (c) => c.query('select count(*)::int as n from api_requests'))
    expect(rows.rows[0].n).toBe(0)
  })
})
