/**
 * Drill: a role whose statement_timeout is 1 s adopts a Docker-init database with large
 * responses. Every long statement of the migrations, index builds, refresh and ANALYZE must
 * set its own timeout instead of inheriting the role's.
 */
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { fillProxyLikeRows, loadFixture, runDb } from '../helpers/drills.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'

const TIMEOUT = 900_000

describe('a role with statement_timeout = 1s', () => {
  it('adopts the same database: migrations, index builds, refresh and ANALYZE set their own timeouts', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('role_timeout')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    await fillProxyLikeRows(db.databaseUrl, 20_000, 40)
    const role = `drill_timeout_${Date.now()}`
    await withClient(db.rootUrl, async (c) => {
      await c.query(`create role ${role} superuser login password 'timeout-drill'`)
      await c.query(`alter role ${role} set statement_timeout = '1s'`)
    })
    try {
      const as = (url: string) => {
        const u = new URL(url)
        u.username = role
        u.password = 'timeout-drill'
        return u.toString()
      }
      // The role's setting is really in force (a GIN build of this table takes longer).
      const probe = await withClient(as(db.databaseUrl), (c) => c.query(`show statement_timeout`))
      expect(probe.rows[0].statement_timeout).toBe('1s')
      const env = { DATABASE_URL: as(db.databaseUrl), SHADOW_DATABASE_URL: as(db.shadowUrl), ROOT_DATABASE_URL: as(db.rootUrl) }
      const r = await runDb(['migrate'], env)
      expect(r.exitCode, r.all).toBe(0)
      expect(r.all).not.toMatch(/statement timeout/)
      expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
    } finally {
      await withClient(db.rootUrl, async (c) => {
        await c.query(`reassign owned by ${role} to current_user`).catch(() => {})
        await c.query(`drop owned by ${role}`).catch(() => {})
      })
    }
  })
})
