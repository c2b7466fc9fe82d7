/**
 * Drill: the server's log after an adoption. Operators alert on ERROR lines, so the tools'
 * own probing ("does this table exist yet?") must not write any: `db:migrate --plan`, then
 * `db:migrate` of a Docker-init legacy database, `db:status`, `db:verify` and a second
 * `db:migrate` leave no ERROR in the server's log.
 *
 * On a private embedded server (.data/drill-log-embedded), so that the deliberate errors of
 * the test files running beside it are not read; skipped, like the restart drill, only when
 * the tests use an external server (TEST_ROOT_DATABASE_URL).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { loadFixture, runDb } from '../helpers/drills.js'
import { usePrivateEmbeddedServer } from '../helpers/private-server.js'
import { placementFor } from '../../scripts/embedded/embedded-placement.js'

const { enabled, dataRoot } = usePrivateEmbeddedServer('drill-log-embedded')
// Where the server writes it: beside the data, or where the cluster was relocated to (as root
// in a private folder the server runs as another user, outside that folder).
const LOG = placementFor(dataRoot).logFile

describe.skipIf(!enabled)('the server log', () => {
  it('holds no ERROR after an adoption and the commands around it', { timeout: 600_000 }, async () => {
    const db = await createTestDatabases('log_clean')
    await loadFixture(db.databaseUrl, 'docker-init.sql')
    // Markers written through the server itself: the part of the log between them is this run's.
    const mark = (text: string) => withClient(db.databaseUrl, (c) => c.query(`do $$ begin raise log '${text}'; end $$`))
    await mark('drill log: start')
    for (const args of [['migrate', '--plan'], ['migrate'], ['status'], ['verify'], ['migrate']]) {
      const r = await runDb(args, db.env)
      expect(r.exitCode, `${args.join(' ')}: ${r.all}`).toBe(0)
    }
    await mark('drill log: end')
    const log = readFileSync(LOG, 'utf8')
    const written = log.slice(log.lastIndexOf('drill log: start'), log.lastIndexOf('drill log: end'))
    expect(written, 'both markers are in the log this test reads').toMatch(/^drill log: start/)
    expect(written.split('\n').filter((line) => /\b(ERROR|FATAL|PANIC):/.test(line))).toEqual([])
  })
})
