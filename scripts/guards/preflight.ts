/**
 * Checks `db:migrate` makes before it changes anything, so that a mistake in the checkout, the
 * settings or the role is reported as one clear paragraph with nothing applied — instead of as
 * a graphile-migrate stack trace after half of the pending migrations ran. Plus the advice
 * printed under a graphile-migrate failure.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../lib/errors.js'
import { chainProblems, COMMITTED_FILE, parseCommitted } from '../verify/chain.js'
import { validateHookInputs } from '../../hooks/run.js'
import type pg from 'pg'

/**
 * The committed chain on disk must be intact: graphile-migrate checks a file only when it
 * applies it, so a CRLF or edited file in the middle would otherwise fail the deploy halfway,
 * with a message that does not say what to do.
 */
export function checkCommittedChain(migrationsFolder: string): void {
  const dir = join(migrationsFolder, 'committed')
  if (!existsSync(dir)) return
  // A CRLF file is reported as such, and otherwise checked as if it had LF endings, so that
  // the one real problem is not buried under the parse errors it causes.
  const chain = readdirSync(dir)
    .filter((f) => COMMITTED_FILE.test(f))
    .sort()
    .map((f) => {
      const text = readFileSync(join(dir, f), 'utf8')
      if (!text.includes('\r\n')) return parseCommitted(f, text)
      const parsed = parseCommitted(f, text.replace(/\r\n/g, '\n'))
      return {
        ...parsed,
        problems: ['has CRLF line endings (migration hashes cover the exact bytes, so graphile-migrate cannot use it)', ...parsed.problems],
      }
    })
  const problems = chainProblems(chain)
  if (!problems.length) return
  const advice: string[] = []
  if (problems.some((p) => p.includes('CRLF'))) {
    advice.push(
      'Convert the files with CRLF line endings back to LF: restore them from git (git checkout -- migrations/committed; .gitattributes keeps them LF) or run dos2unix on them.',
    )
  }
  if (problems.some((p) => p.includes('edited after it was committed'))) {
    advice.push(
      'Restore edited committed migrations from version control (git checkout -- migrations/committed); never change a committed migration, put the change in migrations/current.sql instead.',
    )
  }
  if (problems.some((p) => /Previous|numbered/.test(p))) {
    advice.push(
      'Restore the missing or renamed files from version control, or renumber only uncommitted work with db:uncommit / db:commit.',
    )
  }
  throw new UserError(
    [
      `db:migrate did not start: the committed migrations in ${migrationsFolder}/committed are not intact, so nothing was applied.`,
      ...problems.map((p) => `  ✗ ${p}`),
      `${advice.join(' ')} Then run npm run db:verify, and db:migrate again.`.trim(),
    ].join('\n'),
  )
}

/**
 * The hooks' settings (HOOKS_*) and inputs (ACCOUNT_MAPPING_FILE) must be valid before any
 * migration is applied: the hooks run right after the migrations, and a typo found then would
 * leave the database migrated but not backfilled.
 */
export async function checkHookInputs(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await validateHookInputs(env)
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    throw new UserError(`${error.message} Nothing was changed: db:migrate checks the backfill settings before it applies any migration.`)
  }
}

/** Names of the application's relations, from the committed schema snapshot. */
function applicationRelations(projectDir: string): string[] {
  const file = join(projectDir, 'schema', 'schema.sql')
  if (!existsSync(file)) return []
  const names = new Set<string>()
  for (const m of readFileSync(file, 'utf8').matchAll(/^CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) public\.("?)([^\s"(]+)\1/gm))
    names.add(m[2]!)
  return [...names]
}

/**
 * Can this role apply the pending migrations and run the hooks? Checked up front so that a
 * wrong role fails before graphile-migrate has applied half of the chain.
 */
export async function checkPrivileges(client: pg.ClientBase, pending: number, projectDir: string): Promise<void> {
  const { rows } = await client.query<{
    role: string
    db: string
    superuser: boolean
    db_create: boolean
    public_create: boolean
    missing_schemas: string[]
    not_owned: string[]
  }>(
    `select current_user::text as role, current_database()::text as db,
            coalesce((select rolsuper from pg_roles where rolname = current_user), false) as superuser,
            has_database_privilege(current_database(), 'CREATE') as db_create,
            case when to_regnamespace('public') is null then has_database_privilege(current_database(), 'CREATE')
                 else has_schema_privilege('public', 'CREATE') end as public_create,
            array(select s from unnest(array['graphile_migrate', 'migration_hooks']) s
                  where to_regnamespace(s) is null order by 1)::text[] as missing_schemas,
            array(select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
                  where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm') and c.relname = any($1::text[])
                    and not pg_has_role(c.relowner, 'USAGE') order by 1) as not_owned`,
    [applicationRelations(projectDir)],
  )
  const r = rows[0]!
  if (r.superuser) return
  const lacks: string[] = []
  if (r.missing_schemas.length && !r.db_create) {
    lacks.push(
      `cannot create the schema${r.missing_schemas.length > 1 ? 's' : ''} ${r.missing_schemas.join(' and ')} (needs CREATE on database "${r.db}")`,
    )
  }
  if (pending > 0 && !r.public_create) lacks.push('cannot create objects in schema public (needs CREATE on it)')
  if (pending > 0 && r.not_owned.length) {
    const shown = r.not_owned.slice(0, 5).join(', ') + (r.not_owned.length > 5 ? ` and ${r.not_owned.length - 5} more` : '')
    lacks.push(`does not own ${shown} (migrations alter them, which only their owner may do)`)
  }
  if (!lacks.length) return
  throw new UserError(
    `The role "${r.role}" cannot run the migrations on database "${r.db}": it ${lacks.join('; it ')}. Nothing was changed. ` +
      `Run db:migrate as the database owner (the role that owns the application's tables), or grant what is missing.`,
  )
}

const ADVICE: Array<[RegExp, string]> = [
  [
    /Current migration is blank/i,
    'migrations/current.sql holds no SQL (only comments or whitespace), so there is nothing to commit and nothing was committed. Write the change in migrations/current.sql (npm run db:watch applies it as you save), then run npm run db:commit again.',
  ],
  [
    /Failed to get exclusive lock/i,
    'Another graphile-migrate process holds the migration lock on this database (graphile-migrate run directly, or db:watch). Wait for it to finish and run the command again.',
  ],
  [
    /Hash for .* does not match|has the file been tampered with/i,
    'A committed migration was edited after it was committed. Restore it from version control (git checkout -- migrations/committed) and put the change in migrations/current.sql instead; npm run db:verify lists every such file.',
  ],
  [
    /Invalid migration/i,
    'A migration file is malformed (CRLF line endings, or no blank line after its --! headers). Restore it from version control or convert it to LF; npm run db:verify names the file.',
  ],
  [
    /lock timeout/i,
    'A migration waited longer than lock_timeout (pgSettings in .gmrc) for a lock held by another session, typically the application, and was rolled back. npm run db:migrate retries it (MIGRATE_LOCK_RETRIES); if the retries run out, look for a long-running transaction (pg_stat_activity.xact_start) and run the command again.',
  ],
  [
    /permission denied|must be owner/i,
    'The role in DATABASE_URL lacks a privilege the migration needs. Run migrations as the database owner.',
  ],
  [
    /terminating connection|Connection terminated|not queryable|ECONNRESET|server closed the connection/i,
    'The connection to PostgreSQL was lost (server restart, or the session was ended). Run the command again once the server is reachable.',
  ],
  [/ECONNREFUSED/, 'Could not connect to PostgreSQL: is the server running, and are host and port in the connection strings right?'],
  [/password authentication failed/i, 'PostgreSQL rejected the credentials: check the user and password in the connection strings.'],
  [/database .* does not exist/i, 'A database in the connection strings does not exist: create it, or fix its name.'],
]

/** One paragraph printed under a graphile-migrate failure: what happened, and what to do. */
export function graphileFailureAdvice(command: string, output: string): string {
  const advice =
    ADVICE.find(([pattern]) => pattern.test(output))?.[1] ??
    'graphile-migrate reported the error above; fix its cause and run the command again.'
  const kept =
    command === 'migrate'
      ? ' Each migration runs in its own transaction: the one that failed left nothing behind, and those before it stay applied.'
      : ''
  return `db:${command} failed. ${advice}${kept} Set DEBUG=1 to see the stack trace.`
}
