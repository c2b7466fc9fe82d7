/**
 * The developer-facing timings:
 *
 *  migrate from empty  `tsx scripts/cli/db.ts migrate` (what `npm run db:migrate` runs) on an
 *                      empty database, server already up: every committed migration, then the
 *                      hooks. Wall time of the whole command, process start included.
 *  commit              the shadow rebuild `db:commit` performs: `graphile-migrate reset
 *                      --shadow --erase` (the chain on a dropped and re-created shadow
 *                      database, then the afterAllMigrations actions: the hooks on the shadow).
 *                      It runs in a scratch copy of the project (its own .gmrc, migrations,
 *                      schema; code and node_modules linked), with SKIP_SCHEMA_DUMP=1 so that
 *                      schema/schema.sql is not rewritten.
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { check, graphileMigrate, tsx, urlEnv } from './processes.js'
import { PROJECT_ROOT, type BenchServer } from './server.js'

export interface MigrateResult {
  migrateFromEmptyS: number
  commitS: number
}

function scratchProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-project-'))
  for (const f of ['.gmrc', 'package.json', 'migrations', 'schema']) cpSync(join(PROJECT_ROOT, f), join(dir, f), { recursive: true })
  for (const f of ['node_modules', 'scripts', 'hooks', 'tsconfig.json']) symlinkSync(join(PROJECT_ROOT, f), join(dir, f))
  return dir
}

export async function measureMigrate(server: BenchServer): Promise<MigrateResult> {
  const empty = await server.createDatabase('empty')
  // graphile-migrate creates the shadow itself (reset --shadow); created here so that cleanup
  // knows about it and drops it.
  const shadow = await server.createDatabase('empty_shadow')
  const env = urlEnv(server.urlFor(empty), server.urlFor(shadow), server.rootUrl)

  const migrate = check('db.ts migrate (from empty)', await tsx('scripts/cli/db.ts', ['migrate'], env))

  const project = scratchProject()
  try {
    const commit = check(
      'graphile-migrate reset --shadow --erase',
      await graphileMigrate(['reset', '--shadow', '--erase'], { ...env, SKIP_SCHEMA_DUMP: '1' }, project),
    )
    return { migrateFromEmptyS: migrate.ms / 1000, commitS: commit.ms / 1000 }
  } finally {
    rmSync(project, { recursive: true, force: true })
  }
}
