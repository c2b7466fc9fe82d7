/**
 * Drill: secrets. A distinctive password (with characters that URLs must percent-encode) is
 * planted as a real role's password; no output of any command — succeeding or failing, with
 * and without DEBUG — may contain it, raw or encoded, except `db:url --show-password`, which
 * exists to show it. And the embedded server is reachable from this machine only.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, statSync, writeFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { createTestDatabases, dropTestDatabases, rootUrl, withClient } from '../helpers/databases.js'
import { loadFixture, runDb, startScript } from '../helpers/drills.js'
import { execa } from 'execa'
import { cleanEnv, graphileMigrate, nodeWithTsx, PROJECT_ROOT, projectCopy } from '../helpers/project.js'

const TIMEOUT = 900_000
const role = `drill_secret_${randomBytes(4).toString('hex')}`
const password = `Dr1ll:S3cret@/%?#&-${randomBytes(6).toString('hex')}`
const reversed = password.split('').reverse().join('')
const forms = [password, encodeURIComponent(password), password.slice(-12), reversed, reversed.slice(0, 12)]

/** `postgres://role@host/db?password=…`: libpq (and pg) take the password from the query. */
const queryForm = (url: string) => {
  const u = new URL(url)
  u.username = role
  u.password = ''
  u.searchParams.set('password', password)
  return u.toString()
}
/** libpq's keyword/value form, which these commands do not accept (and must not echo). */
const keywordForm = (url: string) => {
  const u = new URL(url)
  return `host=${u.hostname} port=${u.port} user=${role} password='${password.replace(/'/g, "\\'")}' dbname=${u.pathname.slice(1)}`
}
/** The password pasted in unencoded, as people do: `@`, `/`, `%`, `?`, `#` in the middle. */
const rawForm = (url: string) => url.replace(/^postgres:\/\/[^@]*@/, `postgres://${role}:${password}@`)

const as = (url: string, user = role, pw = password) => {
  const u = new URL(url)
  u.username = user
  u.password = encodeURIComponent(pw)
  return u.toString()
}

afterAll(async () => {
  // The role owns what its migrations created: drop those databases first.
  await dropTestDatabases()
  await withClient(rootUrl(), (c) => c.query(`drop role if exists ${pg.escapeIdentifier(role)}`))
})

describe('a planted password', () => {
  it('never appears in the output of any command, succeeding or failing', { timeout: TIMEOUT }, async () => {
    await withClient(rootUrl(), (c) =>
      c.query(`create role ${pg.escapeIdentifier(role)} superuser login password ${pg.escapeLiteral(password)}`),
    )
    const db = await createTestDatabases('secret')
    await loadFixture(db.databaseUrl)
    const env = { DATABASE_URL: as(db.databaseUrl), SHADOW_DATABASE_URL: as(db.shadowUrl), ROOT_DATABASE_URL: as(db.rootUrl) }
    const dir = projectCopy()
    const crlf = join(dir, 'migrations', 'committed', readdirSync(join(dir, 'migrations', 'committed')).sort()[2]!)
    const badMapping = join(dir, 'bad-mapping.json')
    writeFileSync(badMapping, '{"beta-train": 1}')

    // ok: whether the command must succeed (undefined: either; db:drift reports a known false
    // drift of hourly_stats on converged legacy databases, which is not what this drill is about).
    const runs: Array<{ label: string; args: string[]; env: NodeJS.ProcessEnv; cwd?: string; ok?: boolean }> = [
      { label: 'migrate', args: ['migrate'], env, ok: true },
      { label: 'migrate again', args: ['migrate'], env, ok: true },
      { label: 'status', args: ['status'], env, ok: true },
      { label: 'verify', args: ['verify'], env, ok: true },
      { label: 'drift', args: ['drift'], env },
      { label: 'drift --json', args: ['drift', '--json'], env },
      { label: 'url', args: ['url'], env, ok: true },
      {
        label: 'wrong host',
        args: ['migrate'],
        env: { ...env, DATABASE_URL: env.DATABASE_URL.replace('127.0.0.1', 'no-such-host.invalid') },
        ok: false,
      },
      {
        label: 'wrong database',
        args: ['migrate'],
        env: { ...env, DATABASE_URL: as(db.databaseUrl.replace(/\/[^/]*$/, '/no_such_db')) },
        ok: false,
      },
      { label: 'wrong user', args: ['migrate'], env: { ...env, DATABASE_URL: as(db.databaseUrl, 'no_such_user') }, ok: false },
      { label: 'wrong port', args: ['status'], env: { ...env, DATABASE_URL: env.DATABASE_URL.replace(/:(\d+)\//, ':1/') }, ok: false },
      { label: 'same shadow', args: ['migrate'], env: { ...env, SHADOW_DATABASE_URL: env.DATABASE_URL }, ok: false },
      { label: 'not a URL', args: ['migrate'], env: { ...env, DATABASE_URL: `postgres//${role}:${password}@127.0.0.1/x` }, ok: false },
      // Only this unparsable value holds this other password, so only masking can hide it.
      { label: 'not a URL, alone', args: ['migrate'], env: { DATABASE_URL: `postgres//${role}:${reversed}@127.0.0.1/x` }, ok: false },
      { label: 'bad mapping', args: ['migrate'], env: { ...env, ACCOUNT_MAPPING_FILE: badMapping }, ok: false },
      { label: 'drift without root', args: ['drift'], env: { ...env, ROOT_DATABASE_URL: '' }, ok: false },
      // The other forms a connection string takes: each planted in succeeding and failing runs.
      ...(['url', 'status'] as const).flatMap((command) => [
        {
          label: `${command}, ?password=`,
          args: [command],
          env: { ...env, DATABASE_URL: queryForm(db.databaseUrl) },
          ok: command === 'url' ? true : undefined,
        },
        {
          label: `${command}, PGPASSWORD`,
          args: [command],
          env: { ...env, DATABASE_URL: as(db.databaseUrl, role, '').replace(':@', '@'), PGPASSWORD: password },
        },
        { label: `${command}, keyword/value`, args: [command], env: { ...env, DATABASE_URL: keywordForm(db.databaseUrl) }, ok: false },
        {
          label: `${command}, unencoded @ in the password`,
          args: [command],
          env: { ...env, DATABASE_URL: rawForm(db.databaseUrl) },
          ok: false,
        },
      ]),
    ]
    const results: Array<{ label: string; all: string }> = []
    for (const run of runs) {
      for (const debug of run.ok === false ? [false, true] : [false]) {
        const r = await runDb(run.args, debug ? { ...run.env, DEBUG: '1' } : run.env, run.cwd)
        if (run.ok !== undefined) expect(r.exitCode === 0, `${run.label}: ${r.all}`).toBe(run.ok)
        results.push({ label: `${run.label}${debug ? ' (DEBUG)' : ''}`, all: r.all })
      }
    }
    // graphile-migrate failing under db:migrate and db:commit (a CRLF file, a blank current.sql).
    writeFileSync(crlf, readFileSync(crlf, 'utf8').replace(/\n/g, '\r\n'))
    for (const args of [['migrate'], ['commit']]) {
      for (const DEBUG of [undefined, '1']) {
        const r = await runDb(args, { ...env, ...(DEBUG ? { DEBUG } : {}) }, dir)
        expect(r.exitCode, r.all).not.toBe(0)
        results.push({ label: `${args[0]} in a broken project${DEBUG ? ' (DEBUG)' : ''}`, all: r.all })
      }
    }
    // The hooks as graphile-migrate starts them, and their status.
    for (const args of [[], ['--status']]) {
      const r = await startScript('hooks/run.ts', args, { GM_DBURL: env.DATABASE_URL, DEBUG: '1' }).result
      expect(r.exitCode, r.all).toBe(0)
      results.push({ label: `hooks/run.ts ${args.join(' ')}`, all: r.all })
    }

    for (const { label, all } of results) {
      for (const form of forms) expect(all.includes(form), `${label} printed the password:\n${all}`).toBe(false)
    }
    // Control: the password really is in use, and --show-password does show it.
    const shown = await runDb(['url', '--show-password'], env)
    expect(shown.stdout).toContain(encodeURIComponent(password))
    expect(results.find((r) => r.label === 'url')!.all).toMatch(new RegExp(`DATABASE_URL=postgres://${role}:\\*\\*\\*@127\\.0\\.0\\.1`))
  })
})

const dataRoot = inject('embeddedDataRoot')

describe.skipIf(dataRoot === null)('the embedded server', () => {
  it('listens on 127.0.0.1 only, has no Unix socket, no trust authentication, and keeps its password to its owner', async () => {
    await withClient(rootUrl(), async (c) => {
      expect((await c.query('show listen_addresses')).rows[0].listen_addresses).toBe('127.0.0.1')
      expect((await c.query('show unix_socket_directories')).rows[0].unix_socket_directories).toBe('')
      const { rows } = await c.query(`select count(*)::int as n from pg_hba_file_rules where auth_method in ('trust', 'password')`)
      expect(rows[0].n).toBe(0)
    })
    const serverFile = join(dataRoot!, 'server.json')
    expect(statSync(serverFile).mode & 0o077).toBe(0)
    expect(existsSync(join(dataRoot!, '.pwfile'))).toBe(false)
    expect(new URL(rootUrl()).hostname).toBe('127.0.0.1')
  })

  it('db:url and db:status with the embedded server hide its password', { timeout: TIMEOUT }, async () => {
    const { password: serverPassword } = JSON.parse(readFileSync(join(dataRoot!, 'server.json'), 'utf8')) as { password: string }
    const names = ['agent_prompt_train', 'agent_prompt_train_shadow']
    const existed = await withClient(rootUrl(), async (c) =>
      (await c.query(`select datname from pg_database where datname = any($1)`, [names])).rows.map((r) => r.datname),
    )
    try {
      // No DATABASE_URL: the commands use (here: reuse) the embedded server in EMBEDDED_PG_DIR.
      const env = { EMBEDDED_PG_DIR: dataRoot! }
      for (const args of [['url'], ['status']]) {
        const r = await runDb(args, env)
        expect(r.all).not.toContain(serverPassword)
        expect(r.all).not.toContain(encodeURIComponent(serverPassword))
      }
      const shown = await runDb(['url', '--show-password'], env)
      expect(shown.stdout).toContain(encodeURIComponent(serverPassword))
      // db:env: export lines without the password (it goes into a 0600 pgpass file), with
      // which plain graphile-migrate reaches the same database.
      const exported = await runDb(['env'], env)
      expect(exported.exitCode, exported.all).toBe(0)
      expect(exported.all).not.toContain(serverPassword)
      expect(exported.all).not.toContain(encodeURIComponent(serverPassword))
      const vars = Object.fromEntries([...exported.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]))
      expect(Object.keys(vars).sort()).toEqual(['DATABASE_URL', 'PGPASSFILE', 'ROOT_DATABASE_URL', 'SHADOW_DATABASE_URL'])
      expect(statSync(vars.PGPASSFILE!).mode & 0o077).toBe(0)
      const plain = await graphileMigrate(['status'], vars)
      expect(plain.all).not.toMatch(/password authentication failed|Could not determine/)
      expect([0, 1]).toContain(plain.exitCode)
      // The daily loop as the README gives it, in a real shell: after `eval "$(npm run -s
      // db:env)"`, plain graphile-migrate and our own db:status print no warning (pg's pgpass
      // deprecation notice, twice per command before), and no variable holds the password.
      const [node, loaderArgs] = nodeWithTsx('scripts/cli/db.ts', ['status'])
      const shell = await execa(
        'bash',
        ['-c', `eval "$EXPORTS" && graphile-migrate status; "${node}" ${loaderArgs.map((a) => `'${a}'`).join(' ')} >/dev/null; env`],
        {
          cwd: PROJECT_ROOT,
          env: { ...cleanEnv(env), EXPORTS: exported.stdout, PATH: `${join(PROJECT_ROOT, 'node_modules', '.bin')}:${process.env.PATH}` },
          extendEnv: false,
          reject: false,
        },
      )
      expect(shell.stdout, shell.stderr).toMatch(/^PGPASSFILE=/m)
      expect(shell.stderr).not.toMatch(/Warning|deprecated/i)
      expect(shell.stdout).not.toMatch(/^PGPASSWORD=/m)
      expect(shell.stdout).not.toContain(serverPassword)
      expect(shell.stdout).not.toContain(encodeURIComponent(serverPassword))
    } finally {
      await withClient(rootUrl(), async (c) => {
        for (const name of names)
          if (!existed.includes(name)) await c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`)
      })
    }
  })
})
