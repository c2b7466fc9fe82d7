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
import { isMainModule } from '../../lib/entry-point.js'
import { reportFatal } from '../../lib/errors.js'
import { openClient } from '../../lib/connection.js'

export async function repairInvalidIndexes(databaseUrl: string, log: (line: string) => void = console.log): Promise<string[]> {
  const client = await openClient(databaseUrl, { applicationName: 'repair-invalid-indexes' })
  try {
    // Waiting on a lock must not stall the deploy; the next deploy retries.
    await client.query(`set lock_timeout = '10s'`)
    // A concurrent drop waits for older transactions; the role's statement_timeout must not cancel it.
    await client.query(`set statement_timeout = '1h'`)
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
    await client.end()
  }
}

if (isMainModule(import.meta.url)) {
  const url = process.env.GM_DBURL ?? process.env.DATABASE_URL
  if (!url) {
    console.error('repair-invalid-indexes: no database (GM_DBURL is set by graphile-migrate).')
    process.exit(1)
  }
  repairInvalidIndexes(url).then(
    () => process.exit(0),
    (e) => process.exit(reportFatal(e, 'repairing INVALID indexes failed')),
  )
}
