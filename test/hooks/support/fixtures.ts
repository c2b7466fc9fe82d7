/**
 * Building api_requests rows the way the proxy stores them, and reading back the columns the
 * backfills own. Ids are readable: req(12) = 00000000-0000-4000-8000-00000000000c.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import { afterAll } from 'vitest'
import { runHooks, type RunHooksOptions, type RunHooksResult } from '../../../hooks/run.js'
import { execa } from 'execa'
import { closeWriteGate, GATE_PATIENT } from '../../helpers/drills.js'
import { cleanEnv, nodeWithTsx, PROJECT_ROOT } from '../../helpers/project.js'

const uuid = (prefix: string, n: number) => `${prefix}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`
export const req = (n: number) => uuid('00000000', n)
export const conv = (n: number) => uuid('c0000000', n)
/** A 64-character message hash. */
export const hash = (n: number) => n.toString(16).padStart(64, '0')

export interface RowSpec {
  id: string
  /** ISO time, e.g. '2025-01-01T10:02:00Z'. */
  ts: string
  train?: string
  conversation?: string | null
  branch?: string | null
  body?: unknown
  response?: unknown
  duration?: number | null
  hash?: string | null
  parentHash?: string | null
  tti?: unknown
  parentTask?: string | null
  isSubtask?: boolean
  account?: string | null
  systemHash?: string | null
  parentRequest?: string | null
}

/** Insert rows in one statement (so foreign keys between them are checked at its end). */
export async function insertRows(client: pg.ClientBase, rows: RowSpec[]): Promise<void> {
  const records = rows.map((r) => ({
    request_id: r.id,
    timestamp: r.ts,
    train_id: r.train ?? 'train-a',
    method: 'POST',
    path: '/v1/messages',
    headers: {},
    body: r.body ?? null,
    response_body: r.response ?? null,
    duration_ms: r.duration ?? null,
    current_message_hash: r.hash ?? null,
    parent_message_hash: r.parentHash ?? null,
    conversation_id: r.conversation === undefined ? null : r.conversation,
    branch_id: r.branch === undefined ? 'main' : r.branch,
    task_tool_invocation: r.tti ?? null,
    parent_task_request_id: r.parentTask ?? null,
    is_subtask: r.isSubtask ?? false,
    account_id: r.account ?? null,
    system_hash: r.systemHash ?? null,
    parent_request_id: r.parentRequest ?? null,
  }))
  await client.query(
    `insert into api_requests (request_id, timestamp, train_id, method, path, headers, body, response_body, duration_ms,
       current_message_hash, parent_message_hash, conversation_id, branch_id, task_tool_invocation, parent_task_request_id,
       is_subtask, account_id, system_hash, parent_request_id)
     select request_id, timestamp, train_id, method, path, headers, body, response_body, duration_ms,
       current_message_hash, parent_message_hash, conversation_id, branch_id, task_tool_invocation, parent_task_request_id,
       is_subtask, account_id, system_hash, parent_request_id
     from jsonb_to_recordset($1::jsonb) as r(request_id uuid, timestamp timestamptz, train_id text, method text, path text,
       headers jsonb, body jsonb, response_body jsonb, duration_ms int, current_message_hash text, parent_message_hash text,
       conversation_id uuid, branch_id text, task_tool_invocation jsonb, parent_task_request_id uuid, is_subtask boolean,
       account_id text, system_hash text, parent_request_id uuid)`,
    [JSON.stringify(records)],
  )
}

/** A request body: a system prompt and the given messages. */
export function body(messages: unknown, system: unknown = 'You are a helpful assistant.'): Record<string, unknown> {
  return { model: 'claude-sonnet-4', max_tokens: 4096, system, messages }
}

/** The first request of a conversation (or of a sub-task): one user message. */
export const firstRequest = (content: unknown, system?: unknown) => body([{ role: 'user', content }], system)

/** A follow-up request: the history plus a new user message. */
export const followUp = (n: number) =>
  body([
    { role: 'user', content: 'start' },
    ...Array.from({ length: n }, (_, i) => [
      { role: 'assistant', content: [{ type: 'text', text: `answer ${i}` }] },
      { role: 'user', content: `more ${i}` },
    ]).flat(),
  ])

export interface TaskSpec {
  id: string
  prompt: unknown
  description?: string
}

/** A response whose content holds some text and the given Task calls (plus another tool). */
export function taskResponse(calls: TaskSpec[]): Record<string, unknown> {
  return {
    id: 'msg_1',
    role: 'assistant',
    content: [
      { type: 'text', text: 'I will delegate.' },
      { type: 'tool_use', id: 'toolu_read', name: 'Read', input: { file_path: '/x.ts' } },
      ...calls.map((c) => ({
        type: 'tool_use',
        id: c.id,
        name: 'Task',
        input: { description: c.description ?? 'task', prompt: c.prompt },
      })),
    ],
  }
}

/** The application's task_tool_invocation for those calls. */
export const appShape = (calls: TaskSpec[]) =>
  calls.map((c) => ({ id: c.id, name: 'Task', input: { description: c.description ?? 'task', prompt: c.prompt } }))

export const textResponse = (text = 'done') => ({ id: 'msg_t', role: 'assistant', content: [{ type: 'text', text }] })

export interface OwnedColumns {
  request_id: string
  conversation_id: string | null
  branch_id: string | null
  parent_task_request_id: string | null
  is_subtask: boolean | null
  task_tool_invocation: unknown
  parent_request_id: string | null
  account_id: string | null
  system_hash: string | null
}

/** The columns the backfills write, per row, by request_id. */
export async function owned(client: pg.ClientBase): Promise<Map<string, OwnedColumns>> {
  const { rows } = await client.query<OwnedColumns>(
    `select request_id, conversation_id, branch_id, parent_task_request_id, is_subtask, task_tool_invocation,
            parent_request_id, account_id, system_hash
     from api_requests order by request_id`,
  )
  return new Map(rows.map((r) => [r.request_id, r]))
}

/** Every column of every row, as JSON text, in key order: for "nothing else changed" checks. */
export async function fullSnapshot(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ j: string }>(`select to_jsonb(a)::text as j from api_requests a order by request_id`)
  return rows.map((r) => r.j)
}

/**
 * Run the hooks without a terminal, collecting the log instead of printing it. Settings come
 * from `opts.env` only (default: none), never from the developer's shell.
 */
export async function runQuiet(databaseUrl: string, opts: Partial<RunHooksOptions> = {}): Promise<RunHooksResult & { log: string[] }> {
  const log: string[] = []
  const result = await runHooks({ databaseUrl, shadow: false, tty: false, log: (l) => log.push(l), env: {}, ...opts })
  return { ...result, log }
}

/**
 * Run the hooks in-process until one of their updates matching `when` (SQL over OLD/NEW, see
 * closeWriteGate) waits at a write gate; then let it through and stop after that batch, as
 * SIGTERM would. Resolves with the stopped run's result.
 */
export async function runStoppedAt(
  databaseUrl: string,
  when: string,
  opts: Partial<RunHooksOptions> = {},
  table = 'public.api_requests',
): Promise<RunHooksResult & { log: string[] }> {
  const gate = await closeWriteGate(databaseUrl, { when, table })
  let stop = false
  const run = runQuiet(databaseUrl, { ...opts, env: { ...opts.env, ...GATE_PATIENT }, shouldStop: () => (stop ? 'test' : undefined) })
  try {
    await gate.waitUntilBlocked()
    stop = true
  } finally {
    await gate.remove()
  }
  return run
}

/** The ledger row of one backfill, or undefined. */
export async function ledgerRow(client: pg.ClientBase, name: string) {
  const { rows } = await client.query(`select * from migration_hooks.backfills where name = $1`, [name])
  return rows[0] as
    | {
        name: string
        version: number
        state: string
        cursor: unknown
        step: string | null
        rows_changed: string
        rows_skipped: string
        last_error: string | null
        note: string | null
        config_key: string | null
      }
    | undefined
}

/**
 * `hooks/run.ts` as graphile-migrate starts it (gm-action.mjs: Node with tsx's loader), in a
 * process group of its own (so that a kill reaches every child), with exactly `env`.
 */
export function startHookProcess(env: NodeJS.ProcessEnv) {
  return execa(...nodeWithTsx('hooks/run.ts', []), {
    cwd: PROJECT_ROOT,
    env,
    extendEnv: false,
    preferLocal: true,
    localDir: PROJECT_ROOT,
    reject: false,
    detached: true,
  })
}

/** The environment for a spawned hook process: the given settings and none from the shell. */
export function hookEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = cleanEnv()
  for (const key of Object.keys(env)) if (key.startsWith('HOOKS_') || key === 'ACCOUNT_MAPPING_FILE') delete env[key]
  return { ...env, ...extra }
}

const tempDirs: string[] = []

/** A mapping file (ACCOUNT_MAPPING_FILE) with this text, removed when the test file ends. */
export function mappingFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hooks-map-'))
  tempDirs.push(dir)
  const file = join(dir, 'accounts.json')
  writeFileSync(file, text)
  return file
}

afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
