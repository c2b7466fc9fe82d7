/**
 * Copying a database the ways production copies move: pg_dump's plain SQL into psql, or its
 * custom format (-Fc) into pg_restore. The client tools come from Debian's postgresql-client,
 * installed when missing (system-commands.ts); that client is PostgreSQL 15's, so the source
 * must be a 15 server (pg_dump refuses newer ones), while the target may be any newer line.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureCommand } from './system-commands.js'

/** pg_dump (plain SQL, with `dumpArgs`) of `from`, run by psql into the empty database `to`. */
export function copyByPlainDump(from: string, to: string, dumpArgs: string[] = []): void {
  ensureCommand('pg_dump', 'postgresql-client')
  const dump = execFileSync('pg_dump', [...dumpArgs, '--dbname', from], { maxBuffer: 512 * 1024 * 1024 })
  execFileSync('psql', ['--quiet', '--no-psqlrc', '-v', 'ON_ERROR_STOP=1', '--dbname', to], {
    input: dump,
    stdio: ['pipe', 'ignore', 'pipe'],
  })
}

/** pg_dump -Fc of `from`, pg_restore into the empty database `to`. */
export function copyByCustomDump(from: string, to: string): void {
  ensureCommand('pg_dump', 'postgresql-client')
  ensureCommand('pg_restore', 'postgresql-client')
  const dir = mkdtempSync(join(tmpdir(), 'pg-copy-'))
  try {
    const file = join(dir, 'db.dump')
    execFileSync('pg_dump', ['-Fc', '--file', file, '--dbname', from], { stdio: ['ignore', 'ignore', 'pipe'] })
    execFileSync('pg_restore', ['--exit-on-error', '--dbname', to, file], { stdio: ['ignore', 'ignore', 'pipe'] })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
