/**
 * The data every measurement starts from: one "template" database, its schema built by the
 * real chain (`graphile-migrate migrate`, hooks deferred so that they do not run on the empty
 * schema), then filled by generate.ts. Measurements clone it (CREATE DATABASE … TEMPLATE), so
 * each starts from an identical copy and the template itself is never changed.
 */
import { generateData, type GenerateResult } from './generate.js'
import { check, graphileMigrate, urlEnv } from './processes.js'
import type { BenchServer } from './server.js'

/** Apply the committed chain to `database`, without the hooks. */
export async function migrateSchema(server: BenchServer, database: string): Promise<number> {
  const env = urlEnv(server.urlFor(database), server.urlFor(`${database}_shadow`), server.rootUrl, { MIGRATION_HOOKS_DEFERRED: '1' })
  return check(`graphile-migrate migrate on ${database}`, await graphileMigrate(['migrate'], env)).ms
}

export interface Template {
  name: string
  generated: GenerateResult
}

export async function buildTemplate(server: BenchServer, rows: number, log: (line: string) => void): Promise<Template> {
  const name = await server.createDatabase('template')
  await migrateSchema(server, name)
  log(`Generating ${rows} rows into ${name} …`)
  let lastLog = performance.now()
  const generated = await generateData(server.urlFor(name), rows, (done) => {
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now()
      log(`  generated ${done}/${rows} rows`)
    }
  })
  // Nobody may stay connected to a template while it is copied.
  return { name, generated }
}
