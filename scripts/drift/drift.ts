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

export interface DriftReport {
  drift: boolean
  statements: string[]
}

/** SQL statements that would turn `actualUrl`'s public schema into `expectedUrl`'s. */
export async function diffSchemas(actualUrl: string, expectedUrl: string): Promise<DriftReport> {
  const migration = await migra(actualUrl, expectedUrl, { schema: 'public', unsafe: true })
  const statements = [...migration.statements].map((s) => s.trim()).filter(Boolean)
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
