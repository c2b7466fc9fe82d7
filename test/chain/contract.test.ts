/**
 * Every write the application performs (spec section 3) succeeds on the fresh schema, and
 * the two behaviours the chain adds — a refreshable hourly_stats and the last-owner rule —
 * hold on populated data.
 */
import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type pg from 'pg'
import { createTestDatabases, withClient, type TestDatabases } from '../helpers/databases.js'
import { graphileMigrate } from '../helpers/project.js'

let db: TestDatabases
beforeAll(async () => {
  db = await createTestDatabases('contract')
  const r = await graphileMigrate(['migrate'], db.env)
  expect(r.exitCode, r.all).toBe(0)
})

async function insertRequest(c: pg.Client, id: string, extra: { trainId?: string; at?: string; parent?: string | null } = {}) {
  return c.query(
    `insert into api_requests (request_id, train_id, account_id, "timestamp", method, path, headers, body, api_key_hash,
        model, request_type, current_message_hash, parent_message_hash, conversation_id, branch_id, system_hash,
        message_count, parent_task_request_id, is_subtask, task_tool_invocation, parent_request_id)
     values ($1, $2, 'acc-1', $3, 'POST', '/v1/messages', '{"x-app":"1"}', '{"model":"claude","messages":[]}', 'hash-of-key',
        'claude-sonnet', 'inference', repeat('a', 64), null, $4, 'main', repeat('b', 64),
        1, null, false, null, $5)
     on conflict (request_id) do nothing`,
    [id, extra.trainId ?? 'alpha', extra.at ?? new Date().toISOString(), randomUUID(), extra.parent ?? null],
  )
}

describe('application writes', () => {
  it('api_requests insert (idempotent on conflict), response update and task update', async () => {
    const id = randomUUID()
    await withClient(db.databaseUrl, async (c) => {
      expect((await insertRequest(c, id)).rowCount).toBe(1)
      expect((await insertRequest(c, id)).rowCount).toBe(0)
      const upd = await c.query(
        `update api_requests set response_status = 200, response_headers = '{}', response_body = '{"content":[]}',
            response_streaming = true, input_tokens = 10, output_tokens = 20, total_tokens = 30, first_token_ms = 120,
            duration_ms = 900, error = null, tool_call_count = 0, cache_creation_input_tokens = 1,
            cache_read_input_tokens = 2, usage_data = '{"input_tokens":10}'
          where request_id = $1`,
        [id],
      )
      expect(upd.rowCount).toBe(1)
      const task = await c.query(
        `update api_requests set task_tool_invocation = '[{"id":"t","name":"Task","input":{}}]' where request_id = $1`,
        [id],
      )
      expect(task.rowCount).toBe(1)
      const child = randomUUID()
      await insertRequest(c, child, { parent: id })
      const { rows } = await c.query(
        'select total_tokens, first_token_ms, parent_request_id from api_requests where request_id = $1 or request_id = $2 order by parent_request_id nulls first',
        [id, child],
      )
      expect(rows[0]).toMatchObject({ total_tokens: 30, first_token_ms: 120 })
      expect(rows[1].parent_request_id).toBe(id)
    })
  })

  it('streaming_chunks, analysis_audit_log and conversation_analyses inserts', async () => {
    const id = randomUUID()
    await withClient(db.databaseUrl, async (c) => {
      await insertRequest(c, id)
      await c.query(
        `insert into streaming_chunks (request_id, chunk_index, "timestamp", data, token_count) values ($1, 0, now(), 'data: {}', 3)`,
        [id],
      )
      await c.query(
        `insert into analysis_audit_log (event_type, outcome, conversation_id, branch_id, train_id, request_id, user_context, metadata, "timestamp")
         values ('ANALYSIS_REQUEST', 'INITIATED', $1, 'main', 'alpha', $2, '{}', '{}', now())`,
        [randomUUID(), id],
      )
      const conv = randomUUID()
      await c.query(
        `insert into conversation_analyses (conversation_id, branch_id, status, custom_prompt, created_at, updated_at)
         values ($1, 'main', 'pending', 'be brief', now(), now())`,
        [conv],
      )
      // The updated_at trigger fires on update.
      await c.query(`update conversation_analyses set updated_at = '2000-01-01' , status = 'processing' where conversation_id = $1`, [conv])
      const { rows } = await c.query(`select updated_at > '2001-01-01' as touched from conversation_analyses where conversation_id = $1`, [
        conv,
      ])
      expect(rows[0].touched).toBe(true)
    })
  })

  it('trains, credentials, api keys and members inserts', async () => {
    await withClient(db.databaseUrl, async (c) => {
      const t = await c.query(
        `insert into trains (train_id, name, slack_enabled, slack_webhook_url, slack_channel, slack_username, slack_icon_emoji)
         values ('contract-train', 'Contract', true, 'https://example.invalid/hook', '#ops', 'bot', ':train:') returning id`,
      )
      const trainId = t.rows[0].id
      await c.query(
        `insert into anthropic_credentials (account_id, account_name, oauth_access_token, oauth_refresh_token, oauth_expires_at, oauth_scopes, oauth_is_max)
         values ('acc-contract', 'Contract account', 'at', 'rt', now() + interval '1 hour', array['user:inference'], true)`,
      )
      await c.query(
        `insert into train_api_keys (train_id, api_key, key_prefix, key_suffix, name, created_by) values ($1, 'cnp_live_secret', 'cnp_live', 'cret', 'ci', 'me@example.com')`,
        [trainId],
      )
      const m1 = await c.query(
        `insert into train_members (train_id, user_email, role, added_by) values ($1, 'owner@example.com', 'owner', 'me') on conflict (train_id, user_email) do nothing`,
        [trainId],
      )
      const m2 = await c.query(
        `insert into train_members (train_id, user_email, role, added_by) values ($1, 'owner@example.com', 'owner', 'me') on conflict (train_id, user_email) do nothing`,
        [trainId],
      )
      expect([m1.rowCount, m2.rowCount]).toEqual([1, 0])
    })
  })
})

describe('hourly_stats', () => {
  it('refresh_hourly_stats() works twice on populated data and reflects new rows', async () => {
    await withClient(db.databaseUrl, async (c) => {
      for (let i = 0; i < 5; i++) await insertRequest(c, randomUUID(), { trainId: i % 2 ? 'alpha' : 'beta' })
      await c.query('select refresh_hourly_stats()')
      const first = await c.query(`select coalesce(sum(request_count), 0)::int as n from hourly_stats`)
      await insertRequest(c, randomUUID(), { trainId: 'gamma' })
      await c.query('select refresh_hourly_stats()')
      const second = await c.query(
        `select coalesce(sum(request_count), 0)::int as n, count(*) filter (where train_id = 'gamma')::int as g from hourly_stats`,
      )
      const total = await c.query(`select count(*)::int as n from api_requests where "timestamp" > now() - interval '7 days'`)
      expect(second.rows[0].n).toBe(first.rows[0].n + 1)
      expect(second.rows[0].n).toBe(total.rows[0].n)
      expect(second.rows[0].g).toBe(1)
    })
  })
})

describe('every train keeps an owner', () => {
  async function newTrain(c: pg.Client, name: string, owners: string[], members: string[] = []) {
    const { rows } = await c.query(`insert into trains (train_id, name) values ($1, $1) returning id`, [name])
    for (const o of owners)
      await c.query(`insert into train_members (train_id, user_email, role, added_by) values ($1, $2, 'owner', 't')`, [rows[0].id, o])
    for (const m of members)
      await c.query(`insert into train_members (train_id, user_email, role, added_by) values ($1, $2, 'member', 't')`, [rows[0].id, m])
    return rows[0].id as string
  }

  it('refuses deleting or demoting the last owner, allows it when another owner remains', async () => {
    await withClient(db.databaseUrl, async (c) => {
      const solo = await newTrain(c, 'solo', ['a@x'], ['m@x'])
      await expect(c.query(`delete from train_members where train_id = $1 and user_email = 'a@x'`, [solo])).rejects.toThrow(/no owner left/)
      await expect(c.query(`update train_members set role = 'member' where train_id = $1 and user_email = 'a@x'`, [solo])).rejects.toThrow(
        /no owner left/,
      )
      const owners = await c.query(`select count(*)::int as n from train_members where train_id = $1 and role = 'owner'`, [solo])
      expect(owners.rows[0].n).toBe(1)

      const duo = await newTrain(c, 'duo', ['a@x', 'b@x'])
      await c.query(`delete from train_members where train_id = $1 and user_email = 'a@x'`, [duo])
      const left = await c.query(`select user_email from train_members where train_id = $1`, [duo])
      expect(left.rows.map((r) => r.user_email)).toEqual(['b@x'])
    })
  })

  it('allows a hand-over inside one transaction (the check is deferred)', async () => {
    await withClient(db.databaseUrl, async (c) => {
      const t = await newTrain(c, 'handover', ['old@x'])
      await c.query('begin')
      await c.query(`update train_members set role = 'member' where train_id = $1 and user_email = 'old@x'`, [t])
      await c.query(`insert into train_members (train_id, user_email, role, added_by) values ($1, 'new@x', 'owner', 't')`, [t])
      await c.query('commit')
      const { rows } = await c.query(`select user_email, role from train_members where train_id = $1 order by user_email`, [t])
      expect(rows).toEqual([
        { user_email: 'new@x', role: 'owner' },
        { user_email: 'old@x', role: 'member' },
      ])
    })
  })

  it('deleting the train itself is allowed and removes its members', async () => {
    await withClient(db.databaseUrl, async (c) => {
      const t = await newTrain(c, 'doomed', ['a@x'], ['b@x'])
      await c.query(`delete from trains where id = $1`, [t])
      const { rows } = await c.query(`select count(*)::int as n from train_members where train_id = $1`, [t])
      expect(rows[0].n).toBe(0)
    })
  })

  it('legacy 014 backfill gives every ownerless train the placeholder owner', async () => {
    const fresh = await createTestDatabases('owners')
    await withClient(fresh.databaseUrl, async (c) => {
      // Trains created before the members table existed (the chain up to legacy 013).
      await c.query(
        `create table trains (id uuid primary key default gen_random_uuid(), train_id varchar(255) unique not null, name varchar(255) not null)`,
      )
      await c.query(`insert into trains (train_id, name) values ('t1', 'T1'), ('t2', 'T2')`)
    })
    const r = await graphileMigrate(['migrate'], fresh.env)
    expect(r.exitCode, r.all).toBe(0)
    const { rows } = await withClient(fresh.databaseUrl, (c) =>
      c.query(`select t.train_id, m.user_email, m.role, m.added_by from trains t join train_members m on m.train_id = t.id order by 1`),
    )
    expect(rows).toEqual([
      { train_id: 't1', user_email: 'todo@localhost', role: 'owner', added_by: 'system' },
      { train_id: 't2', user_email: 'todo@localhost', role: 'owner', added_by: 'system' },
    ])
  })
})
