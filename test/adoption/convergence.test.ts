/**
 * Adopting an existing database: every legacy state (both real end-states and partial
 * ones) converges, with one `db:migrate`, onto exactly the schema a fresh build has, and
 * keeps every row with every value it had.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { PROJECT_ROOT, tsxScript } from '../helpers/project.js'
import { catalogOf, committedSnapshot } from '../helpers/catalog-of.js'
import { rowChecksums, tableColumns } from '../helpers/row-checksums.js'

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'legacy')
const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.sql'))
  .sort()

/**
 * Columns the hooks are asked to change (fill NULLs, relink sub-tasks, rewrite legacy 003's
 * invocation shape). They are excluded from the "nothing changed" checksum and checked
 * separately: values that were set stay set.
 */
const BACKFILLED = [
  'task_tool_invocation',
  'conversation_id',
  'branch_id',
  'parent_task_request_id',
  'is_subtask',
  'parent_request_id',
  'account_id',
  'system_hash',
]
const FILL_ONLY = ['parent_request_id', 'account_id', 'system_hash']

const migrate = (env: NodeJS.ProcessEnv) => tsxScript('scripts/cli/db.ts', ['migrate'], env)

describe.each(fixtures)('adopting %s', (fixture) => {
  it('converges onto the fresh schema with no row or value lost, and a second run is a no-op', async () => {
    const db = await createTestDatabases('adopt')
    const before = await withClient(db.databaseUrl, async (c) => {
      await c.query(readFileSync(join(FIXTURES, fixture), 'utf8'))
      const cols = await tableColumns(c)
      const kept = Object.fromEntries(
        Object.entries(cols).map(([t, cs]) => [t, t === 'api_requests' ? cs.filter((x) => !BACKFILLED.includes(x)) : cs]),
      )
      const fillOnly = await c.query(
        `select request_id, ${
          FILL_ONLY.filter((x) => cols.api_requests!.includes(x))
            .map((x) => `${x}::text`)
            .join(', ') || 'null as none'
        } from api_requests order by request_id`,
      )
      return { cols, kept, checksums: await rowChecksums(c, kept), fillOnly: fillOnly.rows }
    })
    const rename = { 'api_requests.domain': 'train_id', 'analysis_audit_log.domain': 'train_id' }

    const first = await migrate(db.env)
    expect(first.exitCode, first.all).toBe(0)

    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())

    await withClient(db.databaseUrl, async (c) => {
      expect(await rowChecksums(c, before.kept, rename)).toEqual(before.checksums)
      // Values the hooks only fill in were never overwritten.
      const present = FILL_ONLY.filter((x) => before.cols.api_requests!.includes(x))
      if (present.length) {
        const { rows } = await c.query(
          `select request_id, ${present.map((x) => `${x}::text`).join(', ')} from api_requests order by request_id`,
        )
        expect(rows).toHaveLength(before.fillOnly.length)
        rows.forEach((row, i) => {
          for (const col of present)
            if (before.fillOnly[i][col] !== null) expect(row[col], `${row.request_id}.${col}`).toBe(before.fillOnly[i][col])
        })
      }
      await c.query('select refresh_hourly_stats()')
      await c.query('select refresh_hourly_stats()')
    })

    const after = await withClient(db.databaseUrl, async (c) => rowChecksums(c, await tableColumns(c)))
    const second = await migrate(db.env)
    expect(second.exitCode, second.all).toBe(0)
    expect(second.all).toMatch(/already up to date/i)
    expect(await catalogOf(db.databaseUrl)).toBe(committedSnapshot())
    expect(await withClient(db.databaseUrl, async (c) => rowChecksums(c, await tableColumns(c)))).toEqual(after)
  })
})
