/**
 * `npm run lint:sql`: squawk over the migrations.
 *
 * - migrations/current.sql and every committed migration after the legacy baseline are
 *   linted with every rule except the two below that graphile-migrate settles for us.
 * - The fifteen baseline files (ports of legacy 000–014) must converge existing databases on
 *   the legacy schema exactly, so they knowingly break some rules; each waiver below names
 *   the files and the reason. A baseline file breaking any other rule still fails the lint.
 * - graphile-migrate wraps each file in a transaction unless it starts with
 *   `--! no-transaction`, so squawk is told which (`--assume-in-transaction`).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { isMainModule } from '../../lib/entry-point.js'

/** Rules settled for every file by how we run migrations. */
export const GLOBAL_EXCLUDES: Record<string, string> = {
  'require-lock-timeout': '.gmrc pgSettings sets lock_timeout on every connection graphile-migrate opens; squawk cannot see it.',
  'require-statement-timeout':
    'a statement_timeout would abort long index builds on big tables halfway; lock_timeout already bounds the harm a migration can do to writers.',
}

/** The legacy baseline: migrations 000001–000015. */
const BASELINE_LAST = 15

export const BASELINE_WAIVERS: { rules: string[]; files: string; reason: string }[] = [
  {
    rules: ['prefer-bigint-over-int', 'prefer-identity', 'prefer-text-field', 'ban-char-field'],
    files: 'all baseline files',
    reason:
      'column types are those production databases already have (integer, serial, varchar(n), char(64)); changing them would rewrite big tables and break convergence.',
  },
  {
    rules: ['require-concurrent-index-creation', 'require-concurrent-index-deletion'],
    files: 'all baseline files',
    reason:
      'the baseline recreates indexes existing databases already have (IF NOT EXISTS makes them no-ops there) and builds them on empty tables in fresh databases; only the few missing on Docker-init databases are built, during the adoption window the runbook plans for.',
  },
  {
    rules: ['require-enum-value-ordering'],
    files: '000012 (legacy 011)',
    reason: 'ADD VALUE IF NOT EXISTS only fills in labels a partial database lacks, in the order the type was created with.',
  },
]

const baselineRules = [...new Set(BASELINE_WAIVERS.flatMap((w) => w.rules))]

export interface LintTarget {
  file: string
  excludes: string[]
  inTransaction: boolean
}

export function lintTargets(migrationsFolder: string): LintTarget[] {
  const committed = readdirSync(join(migrationsFolder, 'committed'))
    .filter((f) => /^\d{6}.*\.sql$/.test(f))
    .sort()
    .map((f) => join(migrationsFolder, 'committed', f))
  const files = [...committed, join(migrationsFolder, 'current.sql')]
  return files.map((file) => {
    const number = Number(file.split('/').pop()!.slice(0, 6))
    const isBaseline = !file.endsWith('current.sql') && number <= BASELINE_LAST
    const text = readFileSync(file, 'utf8')
    return {
      file,
      excludes: [...Object.keys(GLOBAL_EXCLUDES), ...(isBaseline ? baselineRules : [])],
      inTransaction: !/^--! no-transaction\b/m.test(text.split('\n\n')[0] ?? ''),
    }
  })
}

export async function lint(migrationsFolder: string): Promise<{ ok: boolean; output: string }> {
  let ok = true
  const output: string[] = []
  for (const t of lintTargets(migrationsFolder)) {
    const text = readFileSync(t.file, 'utf8')
    // A blank current.sql (comments only) has nothing to lint.
    if (!text.split('\n').some((l) => l.trim() && !l.trim().startsWith('--'))) continue
    const r = await execa(
      'squawk',
      [
        '--pg-version=15.0',
        t.inTransaction ? '--assume-in-transaction' : '--no-assume-in-transaction',
        `--exclude=${t.excludes.join(',')}`,
        t.file,
      ],
      { preferLocal: true, reject: false, all: true },
    )
    if (r.exitCode !== 0) {
      ok = false
      output.push(String(r.all))
    }
  }
  return { ok, output: output.join('\n') }
}

if (isMainModule(import.meta.url)) {
  const folder = join(process.cwd(), 'migrations')
  lint(folder).then(({ ok, output }) => {
    if (ok) console.log('squawk: migrations pass (baseline waivers: see scripts/lint/squawk.ts).')
    else
      console.error(
        output + '\nsquawk found problems above. Fix them, or waive a rule for a file with a written reason in scripts/lint/squawk.ts.',
      )
    process.exit(ok ? 0 : 1)
  })
}
