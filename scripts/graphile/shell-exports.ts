/**
 * `npm run db:env`: shell `export` lines that point plain graphile-migrate (and psql) at the
 * databases the npm scripts use, for `eval "$(npm run -s db:env)"`.
 *
 * For the embedded server the URLs carry no password: it is written to a pgpass file beside
 * the server's data (mode 0600) and PGPASSFILE names it, so nothing secret is ever printed or
 * put in the environment. NODE_OPTIONS hides Node's deprecation notices in that shell: pg
 * prints one about pgpass files on every graphile-migrate command.
 * With your own URLs in the environment there is nothing to export.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type DatabaseUrls, HIDE_DEPRECATIONS } from './connection-settings.js'

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
    // Plain graphile-migrate reads that file through pg, which prints a deprecation notice
    // about it on every command; the alternative, PGPASSWORD, would put the password in the
    // environment of every process of the shell. README, "The daily loop".
    `export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }${HIDE_DEPRECATIONS}"`,
    `export DATABASE_URL=${quote(withoutPassword(urls.databaseUrl))}`,
    `export SHADOW_DATABASE_URL=${quote(withoutPassword(urls.shadowUrl ?? ''))}`,
    `export ROOT_DATABASE_URL=${quote(withoutPassword(root.toString()))}`,
  ]
}
