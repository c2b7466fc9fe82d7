/**
 * `npm run db:drift`: does the target database have exactly the schema the committed chain
 * builds?
 *
 * The chain is built from scratch on the shadow database (graphile-migrate reset --shadow),
 * then @pgkit/migra — a real schema-diff library — computes the SQL that would turn the target
 * into that build. Any statement is drift; each names the object it touches. Only the `public`
 * schema is compared: graphile_migrate's and the hooks' (migration_hooks) bookkeeping are not
 * the application's schema.
 */
import { run as migra } from '@pgkit/migra'
import { openClient } from '../../lib/connection.js'

export interface DriftReport {
  drift: boolean
  statements: string[]
}

const normalise = (sql: string) => sql.replace(/\s+/g, ' ').replace(/;\s*$/, '').trim()

/**
 * migra rebuilds every view that depends on a table whose columns sit at other positions,
 * even when the view itself is identical — and a legacy database that gained columns later
 * always has other positions (a difference we tolerate on purpose, see README). A
 * `drop … view X` + `create … view X as <def>` pair whose <def> is exactly X's current
 * definition changes nothing, so it is not drift.
 */
async function withoutIdenticalViewRebuilds(actualUrl: string, statements: string[]): Promise<string[]> {
  const client = await openClient(actualUrl)
  try {
    const kept = [...statements]
    for (const s of statements) {
      const drop = /^drop (materialized )?view if exists "public"\."([^"]+)"/i.exec(s)
      if (!drop) continue
      const kind = drop[1] ? 'materialized view' : 'view'
      const name = drop[2]!
      const createIndex = kept.findIndex((c) => c.toLowerCase().startsWith(`create ${kind} "public"."${name.toLowerCase()}" as`))
      if (createIndex < 0) continue
      const { rows } = await client.query(`select pg_get_viewdef(to_regclass($1)) as def`, [`public."${name}"`])
      const wanted = kept[createIndex]!.slice(kept[createIndex]!.toLowerCase().indexOf(' as ') + 4)
      if (rows[0]?.def && normalise(rows[0].def) === normalise(wanted)) {
        kept.splice(createIndex, 1)
        kept.splice(kept.indexOf(s), 1)
      }
    }
    return kept
  } finally {
    await client.end()
  }
}

/** SQL statements that would turn `actualUrl`'s public schema into `expectedUrl`'s. */
export async function diffSchemas(actualUrl: string, expectedUrl: string): Promise<DriftReport> {
  const migration = await migra(actualUrl, expectedUrl, { schema: 'public', unsafe: true })
  const raw = [...migration.statements].map((s) => s.trim()).filter(Boolean)
  const statements = await withoutIdenticalViewRebuilds(actualUrl, raw)
  return { drift: statements.length > 0, statements }
}

export function printDriftReport(report: DriftReport, json: boolean): number {
  if (json) {
    console.log(JSON.stringify(report))
  } else if (report.drift) {
    console.log(`db:drift: the database differs from the committed chain. SQL that would make it match (review, do not run blindly):\n`)
    for (const s of report.statements) console.log(s.endsWith(';') ? s : s + ';')
  } else {
    console.log('db:drift: no drift — the database schema equals a fresh build of the committed chain.')
  }
  return report.drift ? 1 : 0
}
