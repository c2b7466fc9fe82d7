/**
 * Drill: bad input. Each mistake ends in one clear paragraph saying what is wrong and what to
 * do (a stack trace only with DEBUG), a non-zero exit, and nothing changed in the database.
 * Unusual but valid data (a 10 MB request body, exotic Unicode) is simply migrated.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { catalogOf } from '../helpers/catalog-of.js'
import { createTestDatabases, rootUrl, urlFor, withClient } from '../helpers/databases.js'
import { checksums, expectCleanFailure, loadFixture, runDb, stackFrames, startDb } from '../helpers/drills.js'
import { projectCopy } from '../helpers/project.js'
import { expectComplete } from './support.js'

const FIXTURE = 'script-chain.sql'
const TIMEOUT = 600_000

/** Everything "nothing changed" compares: schema, every row, and the tools' schemas. */
async function state(url: string) {
  return {
    catalog: await catalogOf(url),
    rows: await checksums(url),
    schemas: await withClient(url, async (c) =>
      (await c.query(`select nspname from pg_namespace where nspname in ('graphile_migrate', 'migration_hooks') order by 1`)).rows.map(
        (r) => r.nspname,
      ),
    ),
  }
}

async function legacyDatabase(label: string) {
  const db = await createTestDatabases(label)
  await loadFixture(db.databaseUrl, FIXTURE)
  return { db, before: await state(db.databaseUrl) }
}

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

const withPassword = (url: string, password: string) => {
  const u = new URL(url)
  u.password = encodeURIComponent(password)
  return u.toString()
}

const tmp = mkdtempSync(join(tmpdir(), 'drill-input-'))
const file = (name: string, text: string) => {
  const path = join(tmp, name)
  writeFileSync(path, text)
  return path
}

describe('connection mistakes', () => {
  it('an unreachable server (a closed port): clear error, stack trace only with DEBUG', { timeout: TIMEOUT }, async () => {
    const port = await closedPort()
    const url = `postgres://postgres:unused-pw-${port}@127.0.0.1:${port}/app`
    const env = {
      DATABASE_URL: url,
      SHADOW_DATABASE_URL: url.replace('/app', '/app_shadow'),
      ROOT_DATABASE_URL: url.replace('/app', '/postgres'),
    }
    for (const command of ['migrate', 'status', 'verify']) {
      const r = await runDb([command], env)
      expectCleanFailure(
        r,
        new RegExp(`Could not connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(connection refused\\)\\. Is the server running`),
      )
      expect(r.all).not.toContain(`unused-pw-${port}`)
    }
    const debug = await runDb(['migrate'], { ...env, DEBUG: '1' })
    expect(debug.exitCode).not.toBe(0)
    expect(stackFrames(debug.stderr).length).toBeGreaterThan(0)
    expect(debug.all).not.toContain(`unused-pw-${port}`)
  })

  it('a wrong password: clear error that does not echo it, nothing changed', { timeout: TIMEOUT }, async () => {
    const { db, before } = await legacyDatabase('bad_pw')
    const wrong = `Wrong-${randomBytes(6).toString('hex')}`
    const env = {
      DATABASE_URL: withPassword(db.databaseUrl, wrong),
      SHADOW_DATABASE_URL: withPassword(db.shadowUrl, wrong),
      ROOT_DATABASE_URL: withPassword(db.rootUrl, wrong),
    }
    const r = await runDb(['migrate'], env)
    expectCleanFailure(
      r,
      /PostgreSQL rejected the credentials \(password authentication failed for user "postgres"\)\. Check the user and password/,
    )
    expect(r.all).not.toContain(wrong)
    expect(await state(db.databaseUrl)).toEqual(before)
  })

  it('a missing database: clear error, and it is not created', { timeout: TIMEOUT }, async () => {
    const name = `missing_${randomBytes(4).toString('hex')}`
    const db = await createTestDatabases('bad_missing')
    const r = await runDb(['migrate'], { ...db.env, DATABASE_URL: urlFor(name) })
    expectCleanFailure(r, new RegExp(`database "${name}" does not exist\\. Create the database first, or fix the database name`))
    const exists = await withClient(rootUrl(), (c) => c.query('select 1 from pg_database where datname = $1', [name]))
    expect(exists.rowCount).toBe(0)
  })

  it.each([
    ['the same URL', (u: string) => u],
    ['localhost for 127.0.0.1', (u: string) => u.replace('127.0.0.1', 'localhost')],
    ['with extra parameters', (u: string) => `${u}?application_name=shadow`],
  ])('SHADOW_DATABASE_URL naming DATABASE_URL’s database (%s): refused, nothing changed', { timeout: TIMEOUT }, async (_, shadowOf) => {
    const { db, before } = await legacyDatabase('bad_shadow')
    for (const command of ['migrate', 'commit', 'drift']) {
      const r = await runDb([command], { ...db.env, SHADOW_DATABASE_URL: shadowOf(db.databaseUrl) })
      expectCleanFailure(r, /SHADOW_DATABASE_URL points at the same database as DATABASE_URL\. The shadow database is dropped and rebuilt/)
    }
    expect(await state(db.databaseUrl)).toEqual(before)
  })
})

describe('a role without the privileges migrations need', () => {
  const role = `drill_norights_${randomBytes(4).toString('hex')}`
  const password = `Pw-${randomBytes(8).toString('hex')}`
  const grants: Array<{ url: string; sql: string }> = []
  afterAll(async () => {
    for (const g of grants.reverse()) await withClient(g.url, (c) => c.query(g.sql)).catch(() => {})
    await withClient(rootUrl(), (c) => c.query(`drop role if exists ${pg.escapeIdentifier(role)}`))
  })
  const asRole = (url: string) => {
    const u = new URL(url)
    u.username = role
    u.password = password
    return u.toString()
  }

  it('no CREATE on the database: refused before anything runs, nothing changed', { timeout: TIMEOUT }, async () => {
    await withClient(rootUrl(), (c) => c.query(`create role ${pg.escapeIdentifier(role)} login password '${password}'`))
    const db = await createTestDatabases('bad_role')
    const before = await state(db.databaseUrl)
    const r = await runDb(['migrate'], { ...db.env, DATABASE_URL: asRole(db.databaseUrl) })
    expectCleanFailure(
      r,
      new RegExp(
        `The role "${role}" cannot run the migrations on database "${db.name}": it cannot create the schemas graphile_migrate and migration_hooks \\(needs CREATE on database "${db.name}"\\).*Nothing was changed\\. Run db:migrate as the database owner`,
      ),
    )
    expect(r.all).not.toContain(password)
    expect(await state(db.databaseUrl)).toEqual(before)
  })

  it('CREATE granted, but the legacy tables belong to another role: refused, nothing changed', { timeout: TIMEOUT }, async () => {
    const { db, before } = await legacyDatabase('bad_owner')
    const name = pg.escapeIdentifier(role)
    await withClient(rootUrl(), (c) => c.query(`grant create on database ${pg.escapeIdentifier(db.name)} to ${name}`))
    grants.push({ url: rootUrl(), sql: `revoke create on database ${pg.escapeIdentifier(db.name)} from ${name}` })
    await withClient(db.databaseUrl, (c) => c.query(`grant create on schema public to ${name}`))
    grants.push({ url: db.databaseUrl, sql: `revoke create on schema public from ${name}` })
    const r = await runDb(['migrate'], { ...db.env, DATABASE_URL: asRole(db.databaseUrl) })
    expectCleanFailure(
      r,
      /it does not own analysis_audit_log, anthropic_credentials, api_requests, conversation_analyses, hourly_stats and \d+ more \(migrations alter them/,
    )
    expect(await state(db.databaseUrl)).toEqual(before)
  })
})

describe('mistakes in the project', () => {
  it('a committed migration with CRLF line endings: refused before anything runs, with what to do', { timeout: TIMEOUT }, async () => {
    const dir = projectCopy()
    const committed = join(dir, 'migrations', 'committed')
    const target = readdirSync(committed).sort()[5]!
    const original = readFileSync(join(committed, target), 'utf8')
    writeFileSync(join(committed, target), original.replace(/\n/g, '\r\n'))
    const { db, before } = await legacyDatabase('bad_crlf')

    const r = await runDb(['migrate'], db.env, dir)
    expectCleanFailure(
      r,
      new RegExp(`db:migrate did not start.*nothing was applied\\.\\n  ✗ ${target.replace('.', '\\.')} has CRLF line endings`, 's'),
    )
    expect(r.stderr).toMatch(/back to LF: restore them from git \(git checkout -- migrations\/committed/)
    // Only the real problem is listed, not the parse errors it causes.
    expect(r.stderr.match(/✗/g)).toHaveLength(1)
    expect(await state(db.databaseUrl)).toEqual(before)
    // db:verify finds it too.
    const verify = await runDb(['verify'], db.env, dir)
    expect(verify.exitCode).toBe(1)
    expect(verify.stdout).toMatch(new RegExp(`${target.replace('.', '\\.')} has CRLF line endings`))

    writeFileSync(join(committed, target), original)
    const fixed = await runDb(['migrate'], db.env, dir)
    expect(fixed.exitCode, fixed.all).toBe(0)
    await expectComplete(db.databaseUrl)
  })

  it('committing a blank current.sql: refused with what to do, nothing committed', { timeout: TIMEOUT }, async () => {
    const dir = projectCopy()
    const db = await createTestDatabases('bad_blank')
    const current = join(dir, 'migrations', 'current.sql')
    const committed = join(dir, 'migrations', 'committed')
    for (const blank of [readFileSync(current, 'utf8'), '-- just a note\n\n   \n/* and a block comment */\n']) {
      writeFileSync(current, blank)
      const files = readdirSync(committed).sort()
      const r = await runDb(['commit'], db.env, dir)
      expectCleanFailure(
        r,
        /Current migration is blank\.\ndb:commit failed\. migrations\/current\.sql holds no SQL \(only comments or whitespace\), so there is nothing to commit/,
      )
      expect(readdirSync(committed).sort()).toEqual(files)
      expect(readFileSync(current, 'utf8')).toBe(blank)
    }
    // graphile-migrate's stack trace is there for whoever asks for it.
    const debug = await runDb(['commit'], { ...db.env, DEBUG: '1' }, dir)
    expect(debug.exitCode).not.toBe(0)
    expect(stackFrames(debug.stderr).length).toBeGreaterThan(0)
    expect((await state(db.databaseUrl)).schemas).toEqual([])
  })
})

describe('bad backfill settings', () => {
  it.each([
    ['not JSON', '{"alpha-train": "acc_a",}', /is not valid JSON/],
    ['a duplicate entry', '{"beta-train": "acc_b", "beta-train": "acc_c"}', /entry "beta-train" appears more than once/],
    ['a value that is not a string', '{"beta-train": 42}', /entry "beta-train": the account id must be a string/],
    ['not an object', '["beta-train"]', /the file must hold one JSON object/],
    ['a missing file', null, /cannot be read \(ENOENT\)/],
  ] as const)('an invalid ACCOUNT_MAPPING_FILE (%s): refused before anything runs', { timeout: TIMEOUT }, async (label, text, message) => {
    const { db, before } = await legacyDatabase('bad_map')
    const path = text === null ? join(tmp, 'absent.json') : file(`map-${label.replace(/\W/g, '_')}.json`, text)
    const r = await runDb(['migrate'], { ...db.env, ACCOUNT_MAPPING_FILE: path })
    expectCleanFailure(
      r,
      new RegExp(`ACCOUNT_MAPPING_FILE "${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": ${message.source}.*Nothing was changed`),
    )
    expect(await state(db.databaseUrl)).toEqual(before)
  })

  it('a valid mapping file after an invalid one: account ids are filled where NULL', { timeout: TIMEOUT }, async () => {
    const { db } = await legacyDatabase('good_map')
    const bad = await runDb(['migrate'], { ...db.env, ACCOUNT_MAPPING_FILE: file('bad.json', '{') })
    expect(bad.exitCode).not.toBe(0)
    const before = await withClient(db.databaseUrl, (c) => c.query(`select request_id, account_id from api_requests order by 1`))
    expect(before.rows.some((r) => r.account_id === null)).toBe(true)
    const good = await runDb(['migrate'], {
      ...db.env,
      ACCOUNT_MAPPING_FILE: file('good.json', '{"alpha-train": "acc_other", "beta-train": "acc_beta"}'),
    })
    expect(good.exitCode, good.all).toBe(0)
    await expectComplete(db.databaseUrl)
    const after = await withClient(db.databaseUrl, (c) => c.query(`select request_id, account_id, train_id from api_requests order by 1`))
    after.rows.forEach((row, i) => {
      const was = before.rows[i].account_id
      if (was !== null) expect(row.account_id, row.request_id).toBe(was)
      else if (row.train_id === 'beta-train') expect(row.account_id, row.request_id).toBe('acc_beta')
      else if (row.train_id === 'alpha-train') expect(row.account_id, row.request_id).toBe('acc_other')
    })
  })

  it.each([
    ['HOOKS_BATCH_SIZE', 'lots', /HOOKS_BATCH_SIZE must be a whole number between 1 and/],
    ['HOOKS_LOCK_TIMEOUT_MS', '-5', /HOOKS_LOCK_TIMEOUT_MS must be a whole number/],
    ['MIGRATE_LOCK_WAIT_SECONDS', 'soon', /MIGRATE_LOCK_WAIT_SECONDS must be a non-negative number of seconds/],
  ])('%s=%s: refused before anything runs', { timeout: TIMEOUT }, async (name, value, message) => {
    const { db, before } = await legacyDatabase('bad_setting')
    const r = await runDb(['migrate'], { ...db.env, [name]: value })
    expectCleanFailure(r, message)
    expect(await state(db.databaseUrl)).toEqual(before)
  })
})

// ---------------------------------------------------------------------------------------------
// Unusual data: valid, so it must simply be migrated.

/** The script-chain fixture's first row, copied with new values (the legacy schema, `domain`). */
async function insertRequest(
  c: pg.Client,
  row: { id: string; ts: string; conversation: string; body: unknown; response?: unknown; duration?: number },
): Promise<void> {
  await c.query(`create temp table if not exists drill_row as select * from api_requests limit 0`)
  await c.query(`truncate drill_row`)
  await c.query(`insert into drill_row select * from api_requests where request_id = 'a0000000-0000-4000-8000-000000000001'`)
  await c.query(
    `update drill_row set request_id = $1::uuid, timestamp = $2::timestamptz, created_at = $2::timestamptz, conversation_id = $3::uuid, body = $4::jsonb,
            response_body = coalesce($5::jsonb, response_body), duration_ms = $6, branch_id = 'main',
            current_message_hash = md5($1::text) || md5($1::text), parent_message_hash = null, parent_task_request_id = null,
            is_subtask = false, task_tool_invocation = null, system_hash = null, parent_request_id = null`,
    [
      row.id,
      row.ts,
      row.conversation,
      JSON.stringify(row.body),
      row.response === undefined ? null : JSON.stringify(row.response),
      row.duration ?? 1000,
    ],
  )
  await c.query(`insert into api_requests select * from drill_row`)
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex')
const response = (prompt: string, id: string) => ({
  id: `msg_${id}`,
  type: 'message',
  role: 'assistant',
  content: [
    { type: 'text', text: 'Delegating.' },
    { type: 'tool_use', id, name: 'Task', input: { prompt, description: 'drill' } },
  ],
  stop_reason: 'tool_use',
})

describe('unusual but valid data', () => {
  it('a 10 MB request body is backfilled like any other', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('big_body')
    await loadFixture(db.databaseUrl, FIXTURE)
    const sentence = 'Prose for a very long system prompt, with numbers 0123456789 and punctuation; '
    const system = sentence.repeat(Math.ceil((10 * 1024 * 1024) / sentence.length))
    const prompt = 'Summarise this long document. '.repeat(40_000) // ~1.2 MB Task prompt
    const ids = { parent: 'b0000000-0000-4000-8000-000000000001', child: 'b0000000-0000-4000-8000-000000000002' }
    const conv = { parent: 'd0000000-0000-4000-8000-000000000001', child: 'd0000000-0000-4000-8000-000000000002' }
    await withClient(db.databaseUrl, async (c) => {
      await insertRequest(c, {
        id: ids.parent,
        ts: '2024-06-01 12:00:00+00',
        conversation: conv.parent,
        body: {
          model: 'm',
          system,
          messages: [
            { role: 'user', content: 'x'.repeat(1024 * 1024) },
            { role: 'assistant', content: 'ok' },
            { role: 'user', content: 'go' },
          ],
        },
        response: response(prompt, 'toolu_big'),
      })
      await insertRequest(c, {
        id: ids.child,
        ts: '2024-06-01 12:00:05+00',
        conversation: conv.child,
        body: { model: 'm', messages: [{ role: 'user', content: prompt }] },
      })
    })
    const bodyBefore = await withClient(db.databaseUrl, (c) =>
      c.query(`select md5(body::text) as h, pg_column_size(body) as size from api_requests where request_id = $1`, [ids.parent]),
    )
    expect(Buffer.byteLength(JSON.stringify({ system }))).toBeGreaterThan(10 * 1024 * 1024)

    const r = await runDb(['migrate'], db.env)
    expect(r.exitCode, r.all).toBe(0)
    await expectComplete(db.databaseUrl)
    const rows = await withClient(db.databaseUrl, (c) =>
      c.query(
        `select request_id::text as id, md5(body::text) as h, system_hash, task_tool_invocation->0->'input'->>'prompt' = $2 as prompt_kept,
                task_tool_invocation->0->>'linked_conversation_id' as linked, parent_task_request_id::text as parent, conversation_id::text as conv
           from api_requests where request_id = any($1::uuid[]) order by 1`,
        [[ids.parent, ids.child], prompt],
      ),
    )
    const [parent, child] = rows.rows
    expect(parent).toMatchObject({ h: bodyBefore.rows[0].h, system_hash: sha256(system.trim()), prompt_kept: true, linked: conv.child })
    expect(child).toMatchObject({ parent: ids.parent, conv: conv.parent })
  })

  // The application's `\s*<system-reminder>` pattern backtracks quadratically over a long run
  // of whitespace in V8 (10 MB: hours); hooks/rules/system-reminders.ts gives the same result in
  // linear time. The time budget below only guards against a hang.
  it('a 10 MB request body that is mostly one run of whitespace is hashed, not stuck', { timeout: TIMEOUT }, async () => {
    const db = await createTestDatabases('big_blank')
    await loadFixture(db.databaseUrl, FIXTURE)
    const system = 'Prompt start.' + ' '.repeat(10 * 1024 * 1024) + 'end'
    const rowId = 'b0000000-0000-4000-8000-000000000003'
    await withClient(db.databaseUrl, (c) =>
      insertRequest(c, {
        id: rowId,
        ts: '2024-06-01 12:00:00+00',
        conversation: 'd0000000-0000-4000-8000-000000000003',
        body: { model: 'm', system, messages: [{ role: 'user', content: 'hi' }] },
      }),
    )
    const run = startDb(['migrate'], db.env)
    const budget = new Promise<'late'>((r) => setTimeout(() => r('late'), 120_000))
    const outcome = await Promise.race([run.result, budget])
    if (outcome === 'late') {
      await run.kill('SIGKILL')
      throw new Error('db:migrate did not finish within 120 s: the system-hash backfill is stuck in a quadratic regular expression')
    }
    expect(outcome.exitCode, outcome.all).toBe(0)
    const { rows } = await withClient(db.databaseUrl, (c) => c.query(`select system_hash from api_requests where request_id = $1`, [rowId]))
    expect(rows[0].system_hash).toBe(sha256(system.trim()))
  })

  it('PostgreSQL refuses lone surrogates and \\u0000 in jsonb, so no backfill ever sees them', async () => {
    await withClient(rootUrl(), async (c) => {
      await expect(c.query(`select '"\\ud800"'::jsonb`)).rejects.toMatchObject({ code: '22P02' })
      await expect(c.query(`select '"x\\udc00y"'::jsonb`)).rejects.toMatchObject({ code: '22P02' })
      await expect(c.query(`select '"\\u0000"'::jsonb`)).rejects.toMatchObject({ code: '22P05' })
      // A valid escaped pair is an emoji.
      expect((await c.query(`select '"\\ud83d\\ude00"'::jsonb #>> '{}' as v`)).rows[0].v).toBe('😀')
    })
  })

  it('emoji, RTL, zero-width, combining characters and escape look-alikes in prompts are handled exactly', {
    timeout: TIMEOUT,
  }, async () => {
    const db = await createTestDatabases('unicode')
    await loadFixture(db.databaseUrl, FIXTURE)
    const texts = {
      emoji: 'Fix the \u{1F41B} in \u{1F469}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466} family view \u{1F1F3}\u{1F1F1} \u{1F600}', // a ZWJ family, a flag
      rtl: 'שלום עולם — مرحبا بالعالم \u202Ereversed\u202C and back', // Hebrew, Arabic, RLO … PDF
      zeroWidth: 'zero\u200Bwidth\u200Cnon\u200Djoiner\uFEFFbom inside', // ZWSP, ZWNJ, ZWJ, BOM
      combining: 'Caf\u00E9 cr\u00E8me br\u00FBl\u00E9e, Zo\u00EB, \u00C5, \u00F1', // precomposed (NFC); NFD splits off the accents
      zalgo: 'Z\u0335\u0321\u0322a\u0300\u0301\u0302l\u0303g\u0304o and e\u0301 decomposed', // stacked combining marks
      escapes: 'a literal \\ud800 and \\u0000 and \\n, not escapes',
    }
    const nfd = texts.combining.normalize('NFD')
    expect(nfd).not.toBe(texts.combining)
    const id = (n: number) => `e0000000-0000-4000-8000-${String(n).padStart(12, '0')}`
    const conv = (n: number) => `f0000000-0000-4000-8000-${String(n).padStart(12, '0')}`
    const entries = Object.entries(texts)
    await withClient(db.databaseUrl, async (c) => {
      for (const [i, [, text]] of entries.entries()) {
        const base = i * 10
        const ts = (s: number) => `2024-06-02 ${String(10 + i).padStart(2, '0')}:00:${String(s).padStart(2, '0')}+00`
        // A parent whose system prompt (string and block form) and Task prompt are the text…
        await insertRequest(c, {
          id: id(base + 1),
          ts: ts(0),
          conversation: conv(base + 1),
          body: {
            model: 'm',
            system: i % 2 ? text : [{ type: 'text', text }],
            messages: [
              { role: 'user', content: 'a' },
              { role: 'assistant', content: 'b' },
              { role: 'user', content: 'c' },
            ],
          },
          response: response(text, `toolu_u${i}`),
        })
        // …the sub-task that it started (its first message is exactly the prompt)…
        await insertRequest(c, {
          id: id(base + 2),
          ts: ts(5),
          conversation: conv(base + 2),
          body: { model: 'm', messages: [{ role: 'user', content: text }] },
        })
      }
      // …and a conversation whose text differs only in Unicode normalisation: not the same prompt.
      await insertRequest(c, {
        id: id(99),
        ts: '2024-06-02 13:00:06+00',
        conversation: conv(99),
        body: { model: 'm', messages: [{ role: 'user', content: nfd }] },
      })
    })

    const r = await runDb(['migrate'], db.env)
    expect(r.exitCode, r.all).toBe(0)
    await expectComplete(db.databaseUrl)
    await withClient(db.databaseUrl, async (c) => {
      for (const [i, [name, text]] of entries.entries()) {
        const base = i * 10
        const { rows } = await c.query(
          `select request_id::text as id, system_hash, task_tool_invocation as tti, parent_task_request_id::text as parent, is_subtask, conversation_id::text as conv
             from api_requests where request_id = any($1::uuid[]) order by 1`,
          [[id(base + 1), id(base + 2)]],
        )
        const [parent, child] = rows
        expect(parent.system_hash, name).toBe(sha256(text.trim()))
        expect(parent.tti, name).toEqual([
          { id: `toolu_u${i}`, name: 'Task', input: { prompt: text, description: 'drill' }, linked_conversation_id: conv(base + 2) },
        ])
        expect(child, name).toMatchObject({ parent: id(base + 1), is_subtask: true, conv: conv(base + 1) })
      }
      const { rows } = await c.query(
        `select parent_task_request_id, conversation_id::text as conv from api_requests where request_id = $1`,
        [id(99)],
      )
      expect(rows[0]).toEqual({ parent_task_request_id: null, conv: conv(99) })
    })
  })
})
