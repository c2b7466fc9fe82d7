/**
 * Scratch tables are retired (renamed) in the transaction that marks the row pass done, and
 * dropped afterwards, each in a transaction of its own (hooks/runner/retired-tables.ts): the
 * done transaction's length must not grow with the scratch tables' size. Checked in the
 * catalog: an event trigger records the transaction of every DROP, a trigger on the ledger
 * the transaction that marked the backfill done.
 */
import { describe, expect, it } from 'vitest'
import { subtaskLinks } from '../../hooks/backfills/subtask-links.js'
import { taskInvocations } from '../../hooks/backfills/task-invocations.js'
import { ensureLedger } from '../../hooks/runner/ledger.js'
import { dropRetiredTables, retireTables } from '../../hooks/runner/retired-tables.js'
import { freshDatabase, inDb } from './support/template-databases.js'
import { conv, firstRequest, insertRows, req, runQuiet, taskResponse } from './support/fixtures.js'

const T = (hms: string) => `2025-05-06T${hms}Z`

const retiredTables = (url: string) =>
  inDb(url, async (c) => {
    const { rows } = await c.query(
      `select schemaname || '.' || tablename as t from pg_tables where tablename like 'retired\\_%' order by 1`,
    )
    return rows.map((r) => r.t as string)
  })

describe('retired scratch tables', () => {
  it('are renamed in the transaction that marks linking done, and each dropped in a transaction of its own after it', async () => {
    const url = await freshDatabase('retired')
    await inDb(url, async (c) => {
      await insertRows(c, [
        {
          id: req(1),
          ts: T('10:00:00'),
          conversation: conv(1),
          body: firstRequest('a'),
          response: taskResponse([{ id: 't1', prompt: 'Go' }]),
        },
        { id: req(2), ts: T('10:00:05'), conversation: conv(2), body: firstRequest('Go') },
      ])
      await ensureLedger(c)
      await c.query(`create table public.drops (xid xid8 not null, name text not null)`)
      await c.query(`create table public.done_in (xid xid8 not null, name text not null)`)
      await c.query(`create function public.log_drops() returns event_trigger language plpgsql as $$
        begin
          insert into public.drops select pg_current_xact_id(), object_name
          from pg_event_trigger_dropped_objects() where object_type = 'table' and schema_name = 'migration_hooks';
        end $$`)
      await c.query(`create event trigger log_drops on sql_drop execute function public.log_drops()`)
      await c.query(`create function public.log_done() returns trigger language plpgsql as $$
        begin
          if new.state = 'done' then insert into public.done_in values (pg_current_xact_id(), new.name); end if;
          return new;
        end $$`)
      await c.query(`create trigger log_done after update on migration_hooks.backfills for each row execute function public.log_done()`)
    })
    const result = await runQuiet(url, { backfills: [taskInvocations, subtaskLinks] })
    expect(result.ok, result.error).toBe(true)
    const { drops, done, linked } = await inDb(url, async (c) => {
      const drops = (await c.query(`select xid::text, name from public.drops where name like 'retired\\_%' order by name`)).rows
      const done = (await c.query(`select distinct xid::text from public.done_in`)).rows.map((r) => r.xid as string)
      const linked = (await c.query(`select parent_task_request_id::text as p from api_requests where request_id = $1`, [req(2)])).rows[0].p
      await c.query(`drop event trigger log_drops`)
      return { drops, done, linked }
    })
    expect(linked).toBe(req(1))
    // Both backfills are marked done in one transaction.
    expect(done).toHaveLength(1)
    // Every scratch table of linking and of task-invocations was retired, then dropped…
    expect(drops.map((d) => d.name.replace(/^retired_[0-9a-f]{8}_/, '')).sort()).toEqual(
      [
        'subtask_calls',
        'subtask_conversations',
        'subtask_existing_links',
        'subtask_matches',
        'subtask_prompts',
        'task_blocks_seen',
        'task_blocks_seen_since',
      ].sort(),
    )
    // …none in the transaction that marked them done, each in a transaction of its own.
    expect(drops.filter((d) => d.xid === done[0])).toEqual([])
    expect(new Set(drops.map((d) => d.xid)).size).toBe(drops.length)
    expect(await retiredTables(url)).toEqual([])
  })

  it('left by a killed run are dropped by the next run; nothing else is', async () => {
    const url = await freshDatabase('retired_left')
    await inDb(url, async (c) => {
      await ensureLedger(c)
      await c.query(`create table migration_hooks.subtask_calls as select 1 as n`)
      await c.query(`create table migration_hooks.keep_me (n int)`)
      await c.query(`create table public.retired_keep (n int)`)
      // What a run killed right after its done transaction leaves.
      await c.query('begin')
      await retireTables(c, ['migration_hooks.subtask_calls', 'migration_hooks.not_there'])
      await c.query('commit')
    })
    const left = await retiredTables(url)
    expect(left).toEqual([expect.stringMatching(/^migration_hooks\.retired_[0-9a-f]{8}_subtask_calls$/), 'public.retired_keep'])
    const result = await runQuiet(url, { backfills: [] })
    expect(result.ok, result.error).toBe(true)
    expect(await retiredTables(url)).toEqual(['public.retired_keep'])
    expect(
      await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.keep_me') is not null as kept`)).rows[0].kept),
    ).toBe(true)
  })

  it('refuses a table outside the ledger schema', async () => {
    const url = await freshDatabase('retired_refuse')
    await inDb(url, async (c) => {
      await expect(retireTables(c, ['public.api_requests'])).rejects.toThrow(/not a table of migration_hooks/)
      expect(await dropRetiredTables(c)).toBe(0)
    })
  })
})
