/**
 * The way production moves to a newer PostgreSQL line: dump a chain-built PostgreSQL 15
 * database with pg_dump and restore it into the new server. On the restored copy db:verify
 * and db:drift exit 0 (db:drift compares with that line's own fresh build of the chain, on the
 * same server), the catalog equals that fresh build, db:migrate changes nothing, and every
 * row arrived.
 *
 * It needs a line other than 15 as the test server: `npm run test:lines` runs it on 16, 17
 * and 18 (part of `npm test`). The PostgreSQL 15 source is a private embedded server
 * (.data/upgrade-source-15), started and stopped here. Not with an external server
 * (TEST_ROOT_DATABASE_URL), where the embedded binaries may be absent.
 */
import { resolve } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { appliedMigrations, checksums, loadFixture, runDb } from '../helpers/drills.js'
import { PROJECT_ROOT } from '../helpers/project.js'
import { copyByPlainDump } from '../helpers/pg-copy.js'
import { DEFAULT_MAJOR } from '../../scripts/embedded/embedded-placement.js'
import { ensureEmbeddedServer, stopEmbeddedServer } from '../../scripts/embedded/embedded-server.js'

const MAJOR = process.env.TEST_PG_MAJOR ? Number(process.env.TEST_PG_MAJOR) : DEFAULT_MAJOR
const SOURCE_ROOT = resolve(PROJECT_ROOT, '.data', 'upgrade-source-15')
const onAnotherLine = MAJOR !== DEFAULT_MAJOR && inject('embeddedDataRoot') !== null

afterAll(() => {
  if (onAnotherLine) stopEmbeddedServer(SOURCE_ROOT)
})

describe.runIf(onAnotherLine)(`upgrading by dump and restore, PostgreSQL ${DEFAULT_MAJOR} → ${MAJOR}`, () => {
  it('the restored copy passes db:verify and db:drift, equals the fresh build, and db:migrate changes nothing', {
    timeout: 600_000,
  }, async () => {
    // The source: a legacy database adopted by the chain on PostgreSQL 15, so that rows,
    // backfilled columns and the ledger travel too.
    const source = await ensureEmbeddedServer(SOURCE_ROOT, DEFAULT_MAJOR)
    const name = `upgrade_source_${process.pid}`
    const sourceUrl = source.url(name)
    const sourceEnv = {
      DATABASE_URL: sourceUrl,
      SHADOW_DATABASE_URL: source.url(`${name}_shadow`),
      ROOT_DATABASE_URL: source.url('postgres'),
    }
    await withClient(source.url('postgres'), async (c) => {
      for (const db of [name, `${name}_shadow`]) {
        await c.query(`drop database if exists ${pg.escapeIdentifier(db)} with (force)`)
        await c.query(`create database ${pg.escapeIdentifier(db)}`)
      }
    })
    try {
      await loadFixture(sourceUrl, 'script-chain.sql')
      const built = await runDb(['migrate'], sourceEnv)
      expect(built.exitCode, built.all).toBe(0)

      // pg_dump of the old line (Debian's client is 15's), restored with psql into the new one.
      const target = await createTestDatabases('upgraded')
      copyByPlainDump(sourceUrl, target.databaseUrl)

      expect(await catalogOf(target.databaseUrl)).toBe(committedSnapshot())
      expect(await checksums(target.databaseUrl)).toEqual(await checksums(sourceUrl))
      const verify = await runDb(['verify'], target.env)
      expect(verify.exitCode, verify.all).toBe(0)
      const drift = await runDb(['drift'], target.env)
      expect(drift.exitCode, drift.all).toBe(0)
      const applied = await appliedMigrations(target.databaseUrl)
      const again = await runDb(['migrate'], target.env)
      expect(again.exitCode, again.all).toBe(0)
      expect(again.all).toMatch(/already up to date/)
      expect(await appliedMigrations(target.databaseUrl)).toEqual(applied)
      expect(await catalogOf(target.databaseUrl)).toBe(committedSnapshot())
    } finally {
      await withClient(source.url('postgres'), async (c) => {
        for (const db of [name, `${name}_shadow`]) await c.query(`drop database if exists ${pg.escapeIdentifier(db)} with (force)`)
      })
    }
  })
})
