/**
 * The online schema step (scripts/deploy/online-schema.ts), on the catalog and the rows:
 *  - one process at a time runs it; another leaves the work to it and says who holds it,
 *    and `db:migrate` then ends at once with exit 0, starting no backfill — unless it has
 *    migrations to apply: those wait for the step (bounded), as they would wait behind its
 *    builds; work queued meanwhile is picked up by the step that runs;
 *  - it validates the chain's NOT VALID constraints only, and rows violating one are kept:
 *    the constraint stays NOT VALID, the failure is recorded, later runs do not scan again.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CHAIN_CONSTRAINTS, completeOnlineSchema, ONLINE_SCHEMA_LOCK_KEY, VALIDATION_FAILURES } from '../../scripts/deploy/online-schema.js'
import { createTestDatabases, withClient } from '../helpers/databases.js'
import { COMMITTED, holdTransaction, runDb } from '../helpers/drills.js'
import { freshDatabase, inDb } from '../hooks/support/template-databases.js'

const quiet = () => {}
const INDEX = 'idx_api_requests_errors_by_time'

const convalidated = (url: string, name: string) =>
  inDb(url, async (c) => (await c.query(`select convalidated from pg_constraint where conname = $1`, [name])).rows[0]?.convalidated)

/** Two rows; the second names a parent that does not exist (a deleted row, say). */
async function orphanedChild(url: string): Promise<void> {
  await inDb(url, async (c) => {
    await c.query(`alter table api_requests drop constraint api_requests_parent_request_id_fkey`)
    await c.query(`insert into api_requests (request_id, "timestamp", train_id, method, path, parent_request_id) values
      ('00000000-0000-4000-8000-000000000001', now(), 't', 'POST', '/v1/messages', null),
      ('00000000-0000-4000-8000-000000000002', now(), 't', 'POST', '/v1/messages', '00000000-0000-4000-8000-0000000000ff')`)
    // As the chain adds it on a table with rows (000008).
    await c.query(`alter table api_requests add constraint api_requests_parent_request_id_fkey
      foreign key (parent_request_id) references api_requests (request_id) not valid`)
  })
}

describe('the online schema step', () => {
  it('knows every constraint the chain adds NOT VALID (CHAIN_CONSTRAINTS)', () => {
    const names = new Set<string>()
    for (const file of readdirSync(COMMITTED).filter((f) => f.endsWith('.sql'))) {
      const sql = readFileSync(join(COMMITTED, file), 'utf8')
      for (const m of sql.matchAll(/add constraint\s+([a-z0-9_]+)[^;]*?\bnot valid/gi)) names.add(m[1]!)
      for (const m of sql.matchAll(/ensure_check\('[^']+',\s*'([a-z0-9_]+)'/gi)) names.add(m[1]!)
    }
    expect([...names].sort()).toEqual([...CHAIN_CONSTRAINTS].sort())
  })

  it('keeps rows that violate a chain constraint: NOT VALID stays, the failure is recorded, later runs skip it', async () => {
    const url = await freshDatabase('online_violation')
    await orphanedChild(url)
    const before = await inDb(url, async (c) => (await c.query(`select request_id, parent_request_id from api_requests order by 1`)).rows)

    const first = await completeOnlineSchema(url, quiet)
    expect(first.notValidated).toEqual(['api_requests_parent_request_id_fkey'])
    expect(await convalidated(url, 'api_requests_parent_request_id_fkey')).toBe(false)
    expect(await inDb(url, async (c) => (await c.query(`select request_id, parent_request_id from api_requests order by 1`)).rows)).toEqual(
      before,
    )
    const recorded = await inDb(
      url,
      async (c) => (await c.query(`select constraint_name, failed_at, detail from ${VALIDATION_FAILURES}`)).rows,
    )
    expect(recorded).toHaveLength(1)
    expect(recorded[0].detail).toMatch(/0000000000ff/)
    // New rows are still checked.
    await expect(
      inDb(url, (c) =>
        c.query(`insert into api_requests (request_id, "timestamp", train_id, method, path, parent_request_id)
                 values (gen_random_uuid(), now(), 't', 'POST', '/v1/messages', '00000000-0000-4000-8000-0000000000ee')`),
      ),
    ).rejects.toThrow(/foreign key/)

    // The next deploy does not validate (scan) again: the record is untouched.
    const second = await completeOnlineSchema(url, quiet)
    expect(second.notValidated).toEqual(['api_requests_parent_request_id_fkey'])
    expect(
      await inDb(url, async (c) => (await c.query(`select constraint_name, failed_at, detail from ${VALIDATION_FAILURES}`)).rows),
    ).toEqual(recorded)

    // The chain redefines the constraint (same name): the new definition is tried, and recorded.
    await inDb(url, (c) =>
      c.query(`alter table api_requests drop constraint api_requests_parent_request_id_fkey,
               add constraint api_requests_parent_request_id_fkey foreign key (parent_request_id)
                 references api_requests (request_id) on delete set null not valid`),
    )
    expect((await completeOnlineSchema(url, quiet)).notValidated).toEqual(['api_requests_parent_request_id_fkey'])
    const redefined = await inDb(url, async (c) => (await c.query(`select definition from ${VALIDATION_FAILURES}`)).rows)
    expect(redefined).toEqual([{ definition: expect.stringContaining('ON DELETE SET NULL') }])

    // Fixed by the operator and cleared: validated.
    await inDb(url, async (c) => {
      await c.query(`update api_requests set parent_request_id = null where request_id = '00000000-0000-4000-8000-000000000002'`)
      await c.query(`delete from ${VALIDATION_FAILURES} where constraint_name = 'api_requests_parent_request_id_fkey'`)
    })
    const third = await completeOnlineSchema(url, quiet)
    expect(third.validated).toEqual(['api_requests_parent_request_id_fkey'])
    expect(await convalidated(url, 'api_requests_parent_request_id_fkey')).toBe(true)
  })

  it("leaves a NOT VALID constraint that is not the chain's as it is", async () => {
    const url = await freshDatabase('online_foreign_constraint')
    await inDb(url, (c) => c.query(`alter table api_requests add constraint dba_positive_duration check (duration_ms >= 0) not valid`))
    const result = await completeOnlineSchema(url, quiet)
    expect(result.validated).toEqual([])
    expect(await convalidated(url, 'dba_positive_duration')).toBe(false)
  })

  it('while another session runs it, leaves the queued work to that session and names it', async () => {
    const url = await freshDatabase('online_busy')
    await inDb(url, async (c) => {
      await c.query(
        `insert into migration_hooks.online_index_work (name, statement)
                     values ($1, $2)`,
        [INDEX, `create index concurrently if not exists ${INDEX} on public.api_requests ("timestamp") where error is not null`],
      )
    })
    const holder = await holdTransaction(url, [`select pg_advisory_lock(${ONLINE_SCHEMA_LOCK_KEY})`])
    try {
      const busy = await completeOnlineSchema(url, quiet)
      expect(busy.busy).toContain(`session ${holder.pid}`)
      expect(busy.busy).toContain(INDEX)
      expect(await inDb(url, async (c) => (await c.query(`select to_regclass($1) as i`, [INDEX])).rows[0].i)).toBeNull()
    } finally {
      await holder.release()
    }
    const done = await completeOnlineSchema(url, quiet)
    expect(done.built).toEqual([INDEX])
    expect(
      await inDb(url, async (c) => (await c.query(`select count(*)::int as n from migration_hooks.online_index_work`)).rows[0].n),
    ).toBe(0)
  })

  it('picks up work queued while it runs (a newer deploy queueing more)', async () => {
    const url = await freshDatabase('online_requeue')
    const second = 'idx_api_requests_model_by_time'
    await inDb(url, async (c) => {
      await c.query(`insert into migration_hooks.online_index_work (name, statement) values ($1, $2)`, [
        INDEX,
        `create index concurrently if not exists ${INDEX} on public.api_requests ("timestamp") where error is not null`,
      ])
      // Test-only: when the first build is done (its row deleted), another deploy queues one more.
      await c.query(`create function public.queue_more() returns trigger language plpgsql as $$
        begin
          insert into migration_hooks.online_index_work (name, statement)
          values ('${second}', 'create index concurrently if not exists ${second} on public.api_requests (model, "timestamp")')
          on conflict do nothing;
          return old;
        end $$`)
      await c.query(`create trigger queue_more after delete on migration_hooks.online_index_work for each row
                     when (old.name = '${INDEX}') execute function public.queue_more()`)
    })
    const result = await completeOnlineSchema(url, quiet)
    expect(result.built).toEqual([INDEX, second])
    expect(
      await inDb(url, async (c) => (await c.query(`select count(*)::int as n from migration_hooks.online_index_work`)).rows[0].n),
    ).toBe(0)
  })

  it('db:migrate with migrations pending waits for it, then refuses with nothing applied', async () => {
    const db = await createTestDatabases('online_busy_pending')
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${ONLINE_SCHEMA_LOCK_KEY})`])
    try {
      const run = await runDb(['migrate'], { ...db.env, MIGRATE_LOCK_WAIT_SECONDS: '2' })
      expect(run.exitCode, run.all).not.toBe(0)
      expect(run.all).toContain(`online schema step of session ${holder.pid}`)
      await withClient(db.databaseUrl, async (c) => {
        expect((await c.query(`select to_regclass('graphile_migrate.migrations') as t`)).rows[0].t).toBeNull()
      })
    } finally {
      await holder.release()
    }
  })

  it('db:migrate with nothing pending leaves it to its holder: no backfill started, exit 0', async () => {
    const db = await createTestDatabases('online_busy_migrate')
    const schemaOnly = await runDb(['migrate', '--schema-only'], db.env)
    expect(schemaOnly.exitCode, schemaOnly.all).toBe(0)
    const holder = await holdTransaction(db.databaseUrl, [`select pg_advisory_lock(${ONLINE_SCHEMA_LOCK_KEY})`])
    try {
      const run = await runDb(['migrate'], db.env)
      expect(run.exitCode, run.all).toBe(0)
      await withClient(db.databaseUrl, async (c) => {
        expect((await c.query(`select to_regclass('migration_hooks.backfills') as t`)).rows[0].t).toBeNull()
      })
    } finally {
      await holder.release()
    }
    const again = await runDb(['migrate'], db.env)
    expect(again.exitCode, again.all).toBe(0)
    await withClient(db.databaseUrl, async (c) => {
      const states = (await c.query(`select distinct state from migration_hooks.backfills`)).rows.map((r) => r.state)
      expect(states).toEqual(['done'])
    })
  })
})
