/**
 * graphile-migrate `beforeAllMigrations` action (and, in-process, a step of `npm run
 * db:migrate`): drop INVALID indexes left behind by an interrupted `create index concurrently`.
 *
 * Why: a concurrent index build cannot run in a transaction, so such a migration is a
 * `--! no-transaction` file holding exactly one statement:
 *     create index concurrently if not exists idx_name on tbl (...);
 * If that build is interrupted (deploy killed, lock timeout, duplicate key), PostgreSQL keeps
 * an INVALID index of that name and graphile-migrate does not record the migration. On the
 * next run `if not exists` would see the leftover and skip the build, recording an INVALID
 * index as done. This action runs first (only when migrations are pending, inside
 * graphile-migrate's lock) and drops every INVALID index in the application schema — an
 * invalid index serves no query, so nothing is lost — so the pending migration builds it anew.
 * Builds still in progress (pg_stat_progress_create_index) are left alone.
 */
import type pg from 'pg'
import { isMainModule } from '../../lib/entry-point.js'
import { reportFatal } from '../../lib/errors.js'
import { withClient } from '../../lib/connection.js'

/** On `client`, a session the caller holds (db:migrate: its deploy-lock session); its settings are restored. */
export async function repairInvalidIndexes(client: pg.ClientBase, log: (line: string) => void = console.log): Promise<string[]> {
  const { rows: saved } = await client.query<{ lock: string; statement: string }>(
    `select current_setting('lock_timeout') as lock, current_setting('statement_timeout') as statement`,
  )
  try {
    // Waiting on a lock must not stall the deploy; the next deploy retries.
    await client.query(`select set_config('lock_timeout', '10s', false)`)
    // A concurrent drop waits for older transactions; the role's statement_timeout must not cancel it.
    await client.query(`select set_config('statement_timeout', '1h', false)`)
    const { rows } = await client.query<{ name: string }>(
      `select format('%I.%I', n.nspname, c.relname) as name
         from pg_index i
         join pg_class c on c.oid = i.indexrelid
         join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and not i.indisvalid
          and not exists (select 1 from pg_stat_progress_create_index p where p.index_relid = i.indexrelid)
        order by 1`,
    )
    for (const { name } of rows) {
      log(`Dropping INVALID index ${name} (left by an interrupted concurrent build); its migration rebuilds it.`)
      await client.query(`drop index concurrently if exists ${name}`)
    }
    return rows.map((r) => r.name)
  } finally {
    await client
      .query(`select set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)`, [
        saved[0]!.lock,
        saved[0]!.statement,
      ])
      .catch(() => {})
  }
}

if (isMainModule(import.meta.url)) {
  const url = process.env.GM_DBURL ?? process.env.DATABASE_URL
  if (!url) {
    console.error('repair-invalid-indexes: no database (GM_DBURL is set by graphile-migrate).')
    process.exit(1)
  }
  withClient(url, (client) => repairInvalidIndexes(client), { applicationName: 'repair-invalid-indexes' }).then(
    () => process.exit(0),
    (e) => process.exit(reportFatal(e, 'repairing INVALID indexes failed')),
  )
}
