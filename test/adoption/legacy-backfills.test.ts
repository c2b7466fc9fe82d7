/**
 * Issue "hooks", done-when: on a real legacy database one db:migrate fills every column as
 * specified, and a second run or `graphile-migrate migrate --forceActions` changes nothing.
 * Uses the script-chain end-state fixture (see test/fixtures/legacy/README.md for the rows).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import { graphileMigrate, PROJECT_ROOT, tsxScript } from '../helpers/project.js'
import { rowChecksums, tableColumns } from '../helpers/row-checksums.js'
import { computeSystemHash } from '../../hooks/rules/system-prompt-hash.js'

const row = (n: number) => `a0000000-0000-4000-8000-0000000000${String(n).padStart(2, '0')}`
const conv = (n: number) => `c0000000-0000-4000-8000-0000000000${String(n).padStart(2, '0')}`

let db: TestDatabases
beforeAll(async () => {
  db = await createTestDatabases('legacy_fill')
  await withClient(db.databaseUrl, (c) =>
    c.query(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'legacy', 'script-chain.sql'), 'utf8')),
  )
  const r = await tsxScript('scripts/cli/db.ts', ['migrate'], db.env)
  expect(r.exitCode, r.all).toBe(0)
})

const get = (id: string) =>
  withClient(db.databaseUrl, (c) =>
    c.query(
      `select request_id, conversation_id, branch_id, parent_task_request_id, is_subtask, task_tool_invocation, parent_request_id
         from api_requests where request_id = $1`,
      [id],
    ),
  ).then((r) => r.rows[0])

describe('backfills on the script-chain end-state', () => {
  it('every system_hash equals the application value for its system prompt', async () => {
    const { rows } = await withClient(db.databaseUrl, (c) =>
      c.query(`select request_id, body->'system' as system, system_hash from api_requests order by request_id`),
    )
    expect(rows.length).toBeGreaterThan(10)
    let hashed = 0
    for (const r of rows) {
      expect(r.system_hash, r.request_id).toBe(r.system === null ? null : computeSystemHash(r.system))
      if (r.system_hash) hashed++
    }
    expect(hashed).toBeGreaterThan(5)
  })

  it("P2's two Task calls link S3 and S4 as one subtask branch each, in the parent's conversation", async () => {
    const p2 = await get(row(9))
    expect(p2.task_tool_invocation).toHaveLength(2)
    for (const el of p2.task_tool_invocation) {
      expect(Object.keys(el).sort()).toEqual(['id', 'input', 'linked_conversation_id', 'name'])
      expect(el.name).toBe('Task')
    }
    expect(p2.task_tool_invocation.map((e: { linked_conversation_id: string }) => e.linked_conversation_id)).toEqual([conv(13), conv(14)])
    for (const [n, branch] of [
      [10, 'subtask_1'],
      [11, 'subtask_1'],
      [12, 'subtask_2'],
    ] as const) {
      expect(await get(row(n)), `row ${n}`).toMatchObject({
        conversation_id: p2.conversation_id,
        branch_id: branch,
        parent_task_request_id: row(9),
        is_subtask: true,
      })
    }
    // Same prompt as call 2, but minutes later and no unclaimed call: untouched.
    expect(await get(row(18))).toMatchObject({ parent_task_request_id: null, is_subtask: false, branch_id: 'main' })
  })

  it("legacy 003's invocation shape on P1 is rewritten to the application's, keeping its link", async () => {
    const p1 = await get(row(3))
    expect(p1.task_tool_invocation).toHaveLength(2)
    for (const el of p1.task_tool_invocation) {
      expect(el).toHaveProperty('input.prompt')
      expect(el).not.toHaveProperty('prompt')
    }
    expect(p1.task_tool_invocation[0].linked_conversation_id).toBe(conv(11))
  })

  it('parent_request_id links C3 by message hash', async () => {
    expect((await get(row(17))).parent_request_id).toBe(row(16))
  })

  it('a second db:migrate and migrate --forceActions change nothing', async () => {
    const snapshot = () => withClient(db.databaseUrl, async (c) => rowChecksums(c, await tableColumns(c)))
    const before = await snapshot()
    const again = await tsxScript('scripts/cli/db.ts', ['migrate'], db.env)
    expect(again.exitCode, again.all).toBe(0)
    expect(await snapshot()).toEqual(before)
    const forced = await graphileMigrate(['migrate', '--forceActions'], db.env)
    expect(forced.exitCode, forced.all).toBe(0)
    expect(await snapshot()).toEqual(before)
  })
})
