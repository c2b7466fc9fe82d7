/**
 * `npm run db:env`: shell `export` lines that point plain graphile-migrate (and psql) at the
 * databases the npm scripts use, for `eval "$(npm run -s db:env)"`.
 *
 * For the embedded server the URLs carry no password: it is written to a pgpass file beside
 * the server's data (mode 0600) and PGPASSFILE names it, so nothing secret is ever printed.
 * With your own URLs in the environment there is nothing to export.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DatabaseUrls } from './connection-settings.js'

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`

function withoutPassword(url: string): string {
  const u = new URL(url)
  u.password = ''
  return u.toString()
}

export function shellExports(urls: DatabaseUrls): string[] {
  const dataRoot = urls.dataRoot
  if (!urls.embedded || !dataRoot) return ['# DATABASE_URL is set in this environment already: nothing to export.']
  const root = new URL(urls.rootUrl ?? urls.databaseUrl)
  const passFile = join(dataRoot, 'pgpass')
  const password = decodeURIComponent(root.password)
  // hostname:port:database:username:password, with : and \ escaped as pgpass requires.
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
  writeFileSync(passFile, `${esc(root.hostname)}:${root.port}:*:${esc(decodeURIComponent(root.username))}:${esc(password)}\n`, {
    mode: 0o600,
  })
  return [
    `export PGPASSFILE=${quote(passFile)}`,
    `export DATABASE_URL=${quote(withoutPassword(urls.databaseUrl))}`,
    `export SHADOW_DATABASE_URL=${quote(withoutPassword(urls.shadowUrl ?? ''))}`,
    `export ROOT_DATABASE_URL=${quote(withoutPassword(root.toString()))}`,
  ]
}
