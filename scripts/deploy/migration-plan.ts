/**
 * `npm run db:migrate -- --plan`: what adopting (or deploying to) this database would do,
 * read from the catalog and the committed chain, changing nothing. An operator runs it before
 * the production event: which migrations are pending, which indexes the online schema step
 * will build concurrently (with their table's size), which constraints it will validate, and
 * each backfill's rows and rough time.
 */
import type pg from 'pg'
import { withClient } from '../../lib/connection.js'
import { redactUrl } from '../../lib/redact.js'
import type { Backfill } from '../../hooks/runner/backfill.js'
import { estimateRows } from '../../hooks/runner/key-walk.js'
import { formatDuration } from '../../hooks/runner/progress.js'
import { LEDGER_TABLE, ledgerExists } from '../../hooks/runner/ledger.js'
import { readCommittedChain } from '../verify/chain.js'
import { appliedMigrations } from '../verify/applied-migrations.js'
import { CHAIN_CONSTRAINTS, INDEX_WORK, VALIDATION_FAILURES } from './online-schema.js'
import { relationExists } from '../../lib/catalog-probe.js'
import { HOT_TABLES } from '../../lib/hot-tables.js'
import { costEstimateLines, estimateAdoptionCost } from './adoption-cost.js'

/**
 * Rough cost of all backfills per api_requests row, from `npm run bench` on the 2-core
 * benchmark machine (about 1 ms per row for all of them together); real figures depend on
 * the server, the row size and the traffic.
 */
const MS_PER_ROW = 1.0

interface TableSize {
  rows: number
  bytes: string
}

async function tableSize(client: pg.ClientBase, table: string): Promise<TableSize | null> {
  const { rows } = await client.query<{ bytes: string }>(
    `select pg_size_pretty(pg_total_relation_size(c.oid)) as bytes from pg_catalog.pg_class c where c.oid = to_regclass($1)`,
    [`public.${table}`],
  )
  if (!rows[0]) return null
  // The planner's estimate (an exact count only when the table was never analysed).
  return { rows: await estimateRows(client, `public.${table}`), bytes: rows[0].bytes }
}

async function exists(client: pg.ClientBase, sql: string, params: unknown[]): Promise<boolean> {
  return (await client.query(sql, params)).rowCount !== 0
}

export async function migrationPlan(databaseUrl: string, migrationsFolder: string, backfills: readonly Backfill[]): Promise<string[]> {
  return withClient(
    databaseUrl,
    async (client) => {
      const applied = new Set((await appliedMigrations(client)).map((m) => m.filename.slice(0, 6)))
      const pending = readCommittedChain(migrationsFolder).filter((m) => !applied.has(m.filename.slice(0, 6)))
      const lines = [`Plan for ${redactUrl(databaseUrl)} (read only: nothing was changed).`, '']
      lines.push(pending.length ? `Pending migrations (${pending.length}):` : 'Pending migrations: none.')
      for (const m of pending) lines.push(`  ${m.filename}`)

      // Indexes: queued already, or asked for by a pending migration and missing here.
      const builds = new Map<string, string>()
      const queued = (await relationExists(client, INDEX_WORK))
        ? await client.query<{ name: string; statement: string }>(`select name, statement from ${INDEX_WORK}`)
        : { rows: [] as { name: string; statement: string }[] }
      for (const q of queued.rows) {
        const table = /\son public\.(\w+)/i.exec(q.statement)?.[1]
        if (table) builds.set(q.name, table)
      }
      const present = async (name: string) => exists(client, `select 1 where to_regclass($1) is not null`, [`public.${name}`])
      // Indexes a pending migration renames into place (a legacy name → the canonical one).
      const renamed = new Set<string>()
      for (const m of pending) {
        for (const match of m.body.matchAll(/\['(\w+)', '(\w+)'\]|alter index public\.(\w+) rename to (\w+)/g)) {
          const [from, to] = match[1] ? [match[1], match[2]!] : [match[3]!, match[4]!]
          if (await present(from)) renamed.add(to)
        }
      }
      for (const m of pending) {
        for (const [, name, table] of m.body.matchAll(/ensure_index\('(\w+)',\s*'public\.(\w+)'/g)) {
          if (!renamed.has(name!) && !(await present(name!))) builds.set(name!, table!)
        }
      }
      lines.push('')
      const concurrent: string[] = []
      for (const [name, table] of [...builds].sort()) {
        const size = await tableSize(client, table)
        if (size && size.rows > 0)
          concurrent.push(`  ${name} on ${table} (~${Math.round(size.rows).toLocaleString('en-US')} rows, ${size.bytes})`)
      }
      lines.push(
        concurrent.length
          ? `Indexes the online schema step will build CONCURRENTLY after the migrations (reads and writes go on):`
          : 'Indexes to build concurrently: none.',
        ...concurrent,
      )

      // Constraints: NOT VALID now, or added by a pending migration on a table with rows.
      const toValidate = new Set(
        (
          await client.query<{ name: string }>(
            `select conname as name from pg_catalog.pg_constraint
              where not convalidated and conname = any($1::text[])
                and conrelid = any (select to_regclass(t) from unnest($2::text[]) t)`,
            [CHAIN_CONSTRAINTS, HOT_TABLES],
          )
        ).rows.map((r) => r.name),
      )
      const apiRows = (await tableSize(client, 'api_requests'))?.rows ?? 0
      for (const m of pending) {
        for (const [, name] of m.body.matchAll(/add constraint (\w+)[^;]*not valid/gi)) {
          if (apiRows > 0 && !(await exists(client, `select 1 from pg_catalog.pg_constraint where conname = $1`, [name])))
            toValidate.add(name!)
        }
      }
      // Those whose validation failed on the rows (for this definition) are not tried again.
      const failed = (await relationExists(client, VALIDATION_FAILURES))
        ? await client.query<{ name: string }>(
            `select f.constraint_name as name from ${VALIDATION_FAILURES} f
               join pg_catalog.pg_constraint k on k.conname = f.constraint_name and pg_get_constraintdef(k.oid) = f.definition`,
          )
        : { rows: [] as { name: string }[] }
      for (const { name } of failed.rows) toValidate.delete(name)
      lines.push('')
      lines.push(toValidate.size ? 'Constraints the online schema step will validate (writes go on):' : 'Constraints to validate: none.')
      for (const name of [...toValidate].sort()) lines.push(`  ${name}`)

      // Backfills: what the ledger says, and the rows they walk.
      const ledger = new Map<string, { state: string; version: number }>()
      const recorded = (await ledgerExists(client))
        ? await client.query<{ name: string; state: string; version: number }>(`select name, state, version from ${LEDGER_TABLE}`)
        : { rows: [] as { name: string; state: string; version: number }[] }
      for (const r of recorded.rows) ledger.set(r.name, r)
      const todo = backfills.filter((b) => {
        const entry = ledger.get(b.name)
        return entry?.state !== 'done' || entry.version !== b.version
      })
      lines.push('')
      if (!todo.length || apiRows === 0) {
        lines.push(`Backfills: nothing to do${apiRows === 0 ? ' (api_requests is empty or missing)' : ' (all done)'}.`)
      } else {
        lines.push(
          `Backfills to run (db:backfill; api_requests has ~${Math.round(apiRows).toLocaleString('en-US')} rows; ` +
            `all together roughly ${formatDuration(apiRows * MS_PER_ROW)} at ~${MS_PER_ROW} ms per row, measured on 2 cores):`,
        )
        for (const b of todo)
          lines.push(`  ${b.name}: ${ledger.get(b.name)?.state ?? 'never run'}, walks ~${Math.round(apiRows).toLocaleString('en-US')} rows`)
        lines.push('', ...costEstimateLines(await estimateAdoptionCost(client)))
      }
      lines.push('', 'Next: `db:migrate -- --schema-only` in the deploy job, then `db:backfill` (see the README runbook).')
      return lines
    },
    { applicationName: 'db:migrate --plan' },
  )
}
