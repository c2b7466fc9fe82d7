/**
 * The online half of the schema step, run right after the migrations: what the chain may not
 * do inside a transaction on the proxy's big tables, done without blocking the proxy.
 *
 * The migrations build (or drop) an index on `api_requests` or `streaming_chunks` only while
 * that table is empty (a fresh database), through migration_hooks.ensure_index() and
 * drop_index() (000001). On a table with rows a plain CREATE INDEX holds a SHARE lock — every
 * INSERT and UPDATE of the proxy waits — for the whole build, minutes to hours at production
 * size; so there they queue the statement in migration_hooks.online_index_work instead, and
 * this step runs it CONCURRENTLY: readers and writers go on, the build only waits for
 * transactions older than itself.
 *
 * Likewise constraints: on a table with rows the migrations add foreign keys and checks NOT
 * VALID (a brief lock, no scan), and this step validates every NOT VALID constraint of the
 * application's schema, scanning under a lock that lets reads and writes through. And an
 * index rebuilt because the database had another definition under its name is swapped in.
 *
 * Run by `db:migrate` inside its schema step (every time, so an interrupted build is finished
 * by the next deploy), and by plain graphile-migrate as an afterAllMigrations action (.gmrc).
 * With nothing queued it only reads the catalog.
 */
import type pg from 'pg'
import { openClient } from '../../lib/connection.js'
import { isMainModule } from '../../lib/entry-point.js'
import { reportFatal, UserError } from '../../lib/errors.js'

/** The tables the proxy writes all the time; the chain never blocks their writes for long. */
export const ONLINE_TABLES = ['api_requests', 'streaming_chunks'] as const

export interface OnlineSchemaResult {
  built: string[]
  dropped: string[]
  validated: string[]
}

async function indexState(client: pg.ClientBase, name: string): Promise<'missing' | 'valid' | 'invalid'> {
  const { rows } = await client.query<{ valid: boolean }>(
    `select i.indisvalid as valid from pg_catalog.pg_index i where i.indexrelid = to_regclass(format('public.%I', $1::text))`,
    [name],
  )
  return rows.length === 0 ? 'missing' : rows[0]!.valid ? 'valid' : 'invalid'
}

export async function completeOnlineSchema(databaseUrl: string, log: (line: string) => void = console.log): Promise<OnlineSchemaResult> {
  const client = await openClient(databaseUrl, { applicationName: 'db:migrate online schema step' })
  const result: OnlineSchemaResult = { built: [], dropped: [], validated: [] }
  try {
    // Explicit limits, whatever the role's defaults: a concurrent build of a big index takes
    // as long as it takes, and its waits block nobody (only older transactions are awaited).
    await client.query(`select set_config('statement_timeout', '0', false), set_config('lock_timeout', '0', false)`)
    const { rows: queued } = await client
      .query<{ name: string; statement: string; replaces: string | null }>(
        `select name, statement, replaces from migration_hooks.online_index_work order by requested_at, name`,
      )
      .catch((error) => {
        if ((error as { code?: string }).code === '42P01') return { rows: [] } // no chain applied yet
        throw error
      })
    for (const { name, statement, replaces } of queued) {
      // The queue holds only what the chain's helpers write; anything else is refused, not run.
      if (!/^(create index concurrently if not exists|drop index concurrently if exists) /i.test(statement)) {
        throw new UserError(
          `migration_hooks.online_index_work row "${name}" holds a statement the online schema step does not run: ${statement.slice(0, 80)}… ` +
            'Only the chain writes this table (create/drop index concurrently). Delete the row after checking where it came from.',
        )
      }
      const started = Date.now()
      if (/^drop index concurrently/i.test(statement)) {
        log(`Online schema step: dropping ${name} concurrently…`)
        await client.query(statement)
        result.dropped.push(name)
      } else {
        const state = await indexState(client, name)
        if (state === 'invalid') {
          // Left by an interrupted concurrent build: maintained on every write, never used.
          log(`Online schema step: dropping the INVALID index ${name} (an interrupted build) to rebuild it.`)
          await client.query(`drop index concurrently if exists public.${client.escapeIdentifier(name)}`)
        }
        if (state !== 'valid') {
          log(`Online schema step: building ${name} concurrently (the proxy keeps reading and writing)…`)
          await client.query(statement)
          log(`Online schema step: built ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s.`)
          result.built.push(name)
        }
        if (replaces) {
          // A rebuild: the new index is valid, so the old definition can go and the new one
          // take its name (a rename takes no lock that blocks reads or writes).
          log(`Online schema step: replacing ${replaces} (another definition) with the rebuilt index.`)
          await client.query(`drop index concurrently if exists public.${client.escapeIdentifier(replaces)}`)
          await client.query(`alter index public.${client.escapeIdentifier(name)} rename to ${client.escapeIdentifier(replaces)}`)
          result.dropped.push(replaces)
        }
      }
      await client.query(`delete from migration_hooks.online_index_work where name = $1 and statement = $2`, [name, statement])
    }
    const { rows: pending } = await client.query<{ tbl: string; name: string }>(
      `select format('%I.%I', n.nspname, c.relname) as tbl, k.conname as name
         from pg_catalog.pg_constraint k
         join pg_catalog.pg_class c on c.oid = k.conrelid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and not k.convalidated
        order by 1, 2`,
    )
    for (const { tbl, name } of pending) {
      log(`Online schema step: validating ${name} on ${tbl} (reads and writes go on)…`)
      await client.query(`alter table ${tbl} validate constraint ${client.escapeIdentifier(name)}`)
      result.validated.push(name)
    }
    return result
  } finally {
    await client.end().catch(() => {})
  }
}

if (isMainModule(import.meta.url)) {
  const url = process.env.GM_DBURL ?? process.env.DATABASE_URL
  if (!url) {
    console.error('online schema step: no database (GM_DBURL is set by graphile-migrate).')
    process.exit(1)
  }
  completeOnlineSchema(url).then(
    () => process.exit(0),
    (e) => process.exit(reportFatal(e, 'the online schema step failed')),
  )
}
