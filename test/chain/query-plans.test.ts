/**
 * Migrations 000016–000019 drop three indexes of api_requests that no query needs
 * (idx_requests_request_id, idx_api_requests_response_body_task, idx_api_requests_task_name).
 * The application's reads must keep their plans: the same query, planned on the same data
 * with the three indexes put back and without them, is served by the same indexes — and
 * never by a sequential scan of api_requests.
 */
import { createHash } from 'node:crypto'
import type pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import { runDb } from '../helpers/drills.js'

const DROPPED = ['idx_requests_request_id', 'idx_api_requests_response_body_task', 'idx_api_requests_task_name']

// Their definitions as legacy 004/008 made them (docs/legacy-schema.md), to put them back.
const LEGACY_DEFINITIONS = [
  'create index idx_requests_request_id on public.api_requests (request_id)',
  'create index idx_api_requests_response_body_task on public.api_requests using gin (response_body) where response_body is not null',
  `create index idx_api_requests_task_name on public.api_requests ((response_body::text))
     where response_body is not null and response_body::text like '%"name":"Task"%'`,
]

// The application's Task lookup (docs/application-contract.md) and its conversation reads.
const TASK_LOOKUP = `select request_id from public.api_requests
  where train_id = $1 and "timestamp" between $2 and $3 and response_body is not null
    and response_body->'content' @> jsonb_build_array(jsonb_build_object('type', 'tool_use', 'name', 'Task',
          'input', jsonb_build_object('prompt', $4::text)))
  order by "timestamp" desc limit 10`
const TASK_PARAMS = ['train-3', '2026-02-01', '2026-02-02', 'prompt 6650']
const CONVERSATION = `select request_id, "timestamp" from public.api_requests
  where conversation_id = $1 order by "timestamp" limit 50`
const CONVERSATION_WINDOW = `select request_id from public.api_requests
  where conversation_id = $1 and "timestamp" < $2 order by "timestamp" desc limit 1`

/** 30,000 rows over 7 trains and 3,000 conversations; one row every 10 minutes for 208 days; one response in 50 calls the Task tool. */
async function fill(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(
      `insert into public.api_requests (request_id, train_id, "timestamp", method, path, headers, body, response_body,
                                        conversation_id, model, request_type)
       select gen_random_uuid(), 'train-' || (g % 7), '2026-01-01'::timestamptz + make_interval(secs => g * 600), 'POST',
              '/v1/messages', '{}'::jsonb, jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'q' || g))),
              jsonb_build_object('content', case when g % 50 = 0
                then jsonb_build_array(jsonb_build_object('type', 'tool_use', 'name', 'Task', 'id', 'toolu_' || g,
                       'input', jsonb_build_object('prompt', 'prompt ' || g)))
                else jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'answer ' || g)) end),
              md5('conversation ' || (g % 3000))::uuid, 'claude', 'inference'
         from generate_series(1, 30000) g`,
    )
    // Vacuumed too: with the visibility map set now, index-only scans cost the same in both
    // plans, instead of depending on whether autovacuum has reached the table yet.
    await c.query('vacuum analyze public.api_requests')
  })
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  Plans?: PlanNode[]
}

/** Every node of the query's plan, as "node type [index]" or "node type (table)", depth first. */
async function planOf(c: pg.ClientBase, sql: string, params: unknown[]): Promise<string[]> {
  const { rows } = await c.query(`explain (format json) ${sql}`, params)
  const out: string[] = []
  const walk = (n: PlanNode) => {
    const target = n['Index Name'] ? ` [${n['Index Name']}]` : n['Relation Name'] ? ` (${n['Relation Name']})` : ''
    out.push(`${n['Node Type']}${target}`)
    for (const child of n.Plans ?? []) walk(child)
  }
  walk(rows[0]['QUERY PLAN'][0].Plan)
  return out
}

describe('query plans without the three redundant indexes', () => {
  let db: TestDatabases
  beforeAll(async () => {
    db = await createTestDatabases('plans')
    const r = await runDb(['migrate'], db.env)
    expect(r.exitCode, r.all).toBe(0)
    await fill(db.databaseUrl)
  })

  it('the chain dropped them', async () => {
    const present = await withClient(db.databaseUrl, (c) =>
      c.query(`select relname from pg_class where relname = any ($1::text[])`, [DROPPED]),
    )
    expect(present.rows).toEqual([])
  })

  it.each([
    ['the Task lookup', TASK_LOOKUP, TASK_PARAMS],
    ['a conversation, in time order', CONVERSATION, [md5Uuid('conversation 17')]],
    ['the request before a moment in a conversation', CONVERSATION_WINDOW, [md5Uuid('conversation 17'), '2026-03-01']],
  ])('%s keeps its plan', async (_label, sql, params) => {
    const without = await withClient(db.databaseUrl, (c) => planOf(c, sql, params))
    const withThem = await withClient(db.databaseUrl, async (c) => {
      await c.query('begin')
      try {
        for (const ddl of LEGACY_DEFINITIONS) await c.query(ddl)
        await c.query('analyze public.api_requests')
        return await planOf(c, sql, params)
      } finally {
        await c.query('rollback')
      }
    })
    expect(without).toEqual(withThem)
    expect(without.join(' / ')).toMatch(/Index|Bitmap/)
    expect(without.join(' / ')).not.toMatch(/Seq Scan/)
    for (const name of DROPPED) expect(without.join(' / ')).not.toContain(name)
  })
})

/** The uuid that `md5(text)::uuid` gives in SQL. */
function md5Uuid(text: string): string {
  const hex = createHash('md5').update(text).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
