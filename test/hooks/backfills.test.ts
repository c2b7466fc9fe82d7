/**
 * All backfills over one realistic data set: exact values after one run, and a second run —
 * and a re-run of every backfill at a bumped version — changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { BACKFILLS } from '../../hooks/backfills/index.js'
import { computeSystemHash } from '../../hooks/rules/system-prompt-hash.js'
import { freshDatabase, inDb } from './support/template-databases.js'
import {
  appShape,
  body,
  conv,
  firstRequest,
  followUp,
  fullSnapshot,
  hash,
  insertRows,
  ledgerRow,
  mappingFile,
  owned,
  req,
  runQuiet,
  taskResponse,
  textResponse,
  type RowSpec,
} from './support/fixtures.js'

const T = (hms: string, day = '2025-03-04') => `${day}T${hms}Z`
const CLI = 'You are an interactive CLI tool that helps users with software engineering tasks. Be brief.\ngitStatus: clean\n\nmore'

const researchCalls = [
  { id: 'toolu_research', prompt: 'Research the parser', description: 'research' },
  { id: 'toolu_tests', prompt: 'Write the tests', description: 'tests' },
]
const auditCalls = [
  { id: 'toolu_audit', prompt: 'Audit the logs' },
  { id: 'toolu_metrics', prompt: 'Check the metrics' },
]
const legacyCalls = [
  { id: 'toolu_l1', prompt: 'Legacy one' },
  { id: 'toolu_l2', prompt: 'Legacy two' },
]
const bigText = 'x'.repeat(400_000)

/** The data set; ids are named by role in the comments. */
function dataset(): RowSpec[] {
  return [
    // Conversation 1 (train-a): three requests, a branch, and P (req 3) calling Task twice.
    {
      id: req(1),
      ts: T('10:00:00'),
      conversation: conv(1),
      hash: hash(1),
      body: firstRequest('Build the feature', CLI),
      response: textResponse(),
    },
    {
      id: req(2),
      ts: T('10:01:00'),
      conversation: conv(1),
      hash: hash(2),
      parentHash: hash(1),
      body: followUp(1),
      response: textResponse(),
    },
    {
      id: req(3),
      ts: T('10:02:00'),
      conversation: conv(1),
      hash: hash(3),
      parentHash: hash(2),
      body: followUp(2),
      duration: 100,
      response: taskResponse(researchCalls),
    },
    {
      id: req(4),
      ts: T('10:03:00'),
      conversation: conv(1),
      branch: 'branch_1',
      hash: hash(4),
      parentHash: hash(2),
      body: followUp(2),
      response: textResponse(),
    },
    // Sub-task S1 (two rows), S2 (one text block), S3 (too late, no call left).
    {
      id: req(5),
      ts: T('10:02:05'),
      conversation: conv(2),
      hash: hash(5),
      body: firstRequest('Research the parser'),
      response: textResponse(),
    },
    {
      id: req(6),
      ts: T('10:02:30'),
      conversation: conv(2),
      hash: hash(6),
      parentHash: hash(5),
      body: followUp(1),
      response: textResponse(),
    },
    {
      id: req(7),
      ts: T('10:02:07'),
      conversation: conv(3),
      hash: hash(7),
      body: firstRequest([{ type: 'text', text: 'Write the tests' }]),
      response: textResponse(),
    },
    {
      id: req(8),
      ts: T('10:06:40'),
      conversation: conv(4),
      hash: hash(8),
      body: firstRequest('Write the tests'),
      response: textResponse(),
    },

    // Conversation 5 (train-a): duplicate hashes. Two rows with hash 20 (a retry), a later
    // one, one in train-b; the child picks the latest at or before it in its own train.
    { id: req(20), ts: T('11:00:00'), conversation: conv(5), hash: hash(20), body: firstRequest('Dup'), response: textResponse() },
    { id: req(21), ts: T('11:00:05'), conversation: conv(5), hash: hash(20), body: firstRequest('Dup'), response: textResponse() },
    {
      id: req(22),
      ts: T('11:00:50'),
      conversation: conv(5),
      train: 'train-b',
      hash: hash(20),
      body: firstRequest('Dup'),
      response: textResponse(),
    },
    {
      id: req(23),
      ts: T('11:01:00'),
      conversation: conv(5),
      hash: hash(23),
      parentHash: hash(20),
      body: followUp(1),
      response: textResponse(),
    },
    { id: req(24), ts: T('11:05:00'), conversation: conv(5), hash: hash(20), body: firstRequest('Dup'), response: textResponse() },
    // A child whose parent hash exists nowhere: unresolved, counted as skipped.
    {
      id: req(25),
      ts: T('11:06:00'),
      conversation: conv(5),
      hash: hash(25),
      parentHash: hash(999),
      body: followUp(1),
      response: textResponse(),
    },
    // A row already linked keeps its (deliberately odd) parent.
    {
      id: req(26),
      ts: T('11:07:00'),
      conversation: conv(5),
      hash: hash(26),
      parentHash: hash(20),
      parentRequest: req(20),
      body: followUp(1),
      response: textResponse(),
    },

    // Conversation 9: P9 calls Task twice; the application already linked the first sub-task
    // (branch subtask_1, first row linked, later row not). A second conversation with the
    // same prompt must not take P9's already used call; the other call links as subtask_2.
    {
      id: req(30),
      ts: T('12:00:00'),
      conversation: conv(9),
      hash: hash(30),
      body: firstRequest('Operate'),
      duration: 2000,
      response: taskResponse(auditCalls),
      tti: appShape(auditCalls),
    },
    {
      id: req(31),
      ts: T('12:00:03'),
      conversation: conv(9),
      branch: 'subtask_1',
      parentTask: req(30),
      isSubtask: true,
      hash: hash(31),
      body: firstRequest('Audit the logs'),
      response: textResponse(),
    },
    {
      id: req(32),
      ts: T('12:00:09'),
      conversation: conv(9),
      branch: 'subtask_1',
      hash: hash(32),
      parentHash: hash(31),
      body: followUp(1),
      response: textResponse(),
    },
    {
      id: req(33),
      ts: T('12:00:04'),
      conversation: conv(10),
      hash: hash(33),
      body: firstRequest('Audit the logs'),
      response: textResponse(),
    },
    {
      id: req(34),
      ts: T('12:00:05'),
      conversation: conv(11),
      hash: hash(34),
      body: firstRequest('Check the metrics'),
      response: textResponse(),
    },

    // Legacy 003 shape, with a link on invocation 0: rewritten, link kept.
    {
      id: req(40),
      ts: T('13:00:00'),
      conversation: conv(12),
      body: firstRequest('Old'),
      response: taskResponse(legacyCalls),
      tti: [
        { id: 'toolu_l1', name: 'Task', prompt: 'Legacy one', description: 'task', linked_conversation_id: conv(99) },
        { id: 'toolu_l2', name: 'Task', prompt: 'Legacy two', description: 'task' },
      ],
    },
    // Already in the application's shape: untouched.
    {
      id: req(41),
      ts: T('13:01:00'),
      conversation: conv(13),
      body: firstRequest('New'),
      response: taskResponse([{ id: 'toolu_n', prompt: 'Fresh' }]),
      tti: [{ id: 'toolu_n', name: 'Task', input: { prompt: 'kept as is' } }],
    },
    // Malformed: content not an array; a Task block without input; legacy without content.
    { id: req(42), ts: T('13:02:00'), conversation: conv(14), body: firstRequest('M1'), response: { content: 'plain text' } },
    {
      id: req(43),
      ts: T('13:03:00'),
      conversation: conv(15),
      body: firstRequest('M2'),
      response: { content: [{ type: 'tool_use', id: 'toolu_x', name: 'Task' }] },
    },
    {
      id: req(44),
      ts: T('13:04:00'),
      conversation: conv(16),
      body: firstRequest('M3'),
      response: { type: 'error' },
      tti: [{ id: '', name: 'Task', prompt: 'lost', description: '' }],
    },
    // A Task call with a non-string prompt: extracted whole, never matched.
    {
      id: req(45),
      ts: T('13:05:00'),
      conversation: conv(17),
      body: firstRequest('M4'),
      response: taskResponse([{ id: 'toolu_num', prompt: 12345 }]),
    },
    // No Task call, no response at all: nothing to do.
    { id: req(46), ts: T('13:06:00'), conversation: conv(18), body: firstRequest('M5'), response: textResponse() },
    { id: req(47), ts: T('13:07:00'), conversation: conv(19), body: firstRequest('M6') },
    // A conversation whose first row has no messages: skipped and counted by sub-task linking.
    { id: req(48), ts: T('13:08:00'), conversation: conv(20), body: { model: 'm', system: 'S' }, response: textResponse() },

    // system_hash cases (train-c has no account mapping).
    {
      id: req(60),
      ts: T('14:00:00'),
      train: 'train-c',
      body: body(
        [{ role: 'user', content: 'hi' }],
        [
          { type: 'text', text: 'Block one' },
          { type: 'text', text: 'Block two' },
        ],
      ),
    },
    { id: req(61), ts: T('14:01:00'), train: 'train-c', body: body([{ role: 'user', content: 'hi' }], ''), account: 'acc-existing' },
    { id: req(62), ts: T('14:02:00'), train: 'train-b', body: { model: 'm', messages: [] } },
    {
      id: req(63),
      ts: T('14:03:00'),
      train: 'train-b',
      body: body([{ role: 'user', content: 'hi' }], 'Anything'),
      systemHash: 'f'.repeat(64),
    },
    {
      id: req(64),
      ts: T('14:04:00'),
      train: 'train-b',
      body: body([{ role: 'user', content: bigText }], `Large ${bigText.slice(0, 50_000)}`),
    },
    { id: req(65), ts: T('14:05:00'), train: 'train-b', body: body([{ role: 'user', content: 'hi' }], null) },
  ]
}

describe('all backfills over a realistic data set', () => {
  let url: string
  let first: Awaited<ReturnType<typeof runQuiet>>
  let rows: Awaited<ReturnType<typeof owned>>
  let mappingEnv: NodeJS.ProcessEnv

  beforeAll(async () => {
    url = await freshDatabase('hooks_all')
    await inDb(url, (c) => insertRows(c, dataset()))
    mappingEnv = { ACCOUNT_MAPPING_FILE: mappingFile(JSON.stringify({ 'train-a': 'acc-A', 'train-b': 'acc-B' })) }
    first = await runQuiet(url, { env: mappingEnv })
    rows = await inDb(url, owned)
  })

  const row = (n: number) => rows.get(req(n))!

  it('completes every backfill', () => {
    expect(first.ok).toBe(true)
    expect(first.summaries.map((s) => [s.name, s.outcome])).toEqual(BACKFILLS.map((b) => [b.name, 'done']))
  })

  it('task-invocations: fills the application shape, rewrites legacy 003 rows keeping links, skips malformed rows', () => {
    expect(row(3).task_tool_invocation).toEqual([
      {
        id: 'toolu_research',
        name: 'Task',
        input: { description: 'research', prompt: 'Research the parser' },
        linked_conversation_id: conv(2),
      },
      { id: 'toolu_tests', name: 'Task', input: { description: 'tests', prompt: 'Write the tests' }, linked_conversation_id: conv(3) },
    ])
    expect(row(40).task_tool_invocation).toEqual([
      { id: 'toolu_l1', name: 'Task', input: { description: 'task', prompt: 'Legacy one' }, linked_conversation_id: conv(99) },
      { id: 'toolu_l2', name: 'Task', input: { description: 'task', prompt: 'Legacy two' } },
    ])
    expect(row(41).task_tool_invocation).toEqual([{ id: 'toolu_n', name: 'Task', input: { prompt: 'kept as is' } }])
    expect(row(42).task_tool_invocation).toBeNull()
    expect(row(43).task_tool_invocation).toBeNull()
    expect(row(44).task_tool_invocation).toEqual([{ id: '', name: 'Task', prompt: 'lost', description: '' }])
    expect(row(45).task_tool_invocation).toEqual([{ id: 'toolu_num', name: 'Task', input: { description: 'task', prompt: 12345 } }])
    expect(row(46).task_tool_invocation).toBeNull()
    expect(row(47).task_tool_invocation).toBeNull()
    const s = first.summaries.find((x) => x.name === 'task-invocations')!
    // Filled: 3, 45; rewritten: 40. Skipped: 42 (content), 43 (no input), 44 (legacy, no content).
    expect([s.changed, s.skipped]).toEqual([3, 3])
  })

  it('subtask-links: links S1 and S2 to P, leaves S3, and continues after an existing subtask_K', () => {
    for (const n of [5, 6])
      expect(row(n)).toMatchObject({ conversation_id: conv(1), branch_id: 'subtask_1', parent_task_request_id: req(3), is_subtask: true })
    expect(row(7)).toMatchObject({ conversation_id: conv(1), branch_id: 'subtask_2', parent_task_request_id: req(3), is_subtask: true })
    expect(row(8)).toMatchObject({ conversation_id: conv(4), branch_id: 'main', parent_task_request_id: null, is_subtask: false })
    // P9's "Audit the logs" call was used by the application's link: conversation 10 stays.
    expect(row(33)).toMatchObject({ conversation_id: conv(10), branch_id: 'main', parent_task_request_id: null, is_subtask: false })
    expect(row(34)).toMatchObject({ conversation_id: conv(9), branch_id: 'subtask_2', parent_task_request_id: req(30), is_subtask: true })
    expect(row(30).task_tool_invocation).toEqual([
      { id: 'toolu_audit', name: 'Task', input: { description: 'task', prompt: 'Audit the logs' } },
      { id: 'toolu_metrics', name: 'Task', input: { description: 'task', prompt: 'Check the metrics' }, linked_conversation_id: conv(11) },
    ])
    // The application's own link is untouched.
    expect(row(31)).toMatchObject({ conversation_id: conv(9), branch_id: 'subtask_1', parent_task_request_id: req(30), is_subtask: true })
    expect(row(32)).toMatchObject({ conversation_id: conv(9), branch_id: 'subtask_1', parent_task_request_id: null })
    const s = first.summaries.find((x) => x.name === 'subtask-links')!
    // Skipped: conversation 20 (no messages), the non-string prompt of req 45 and the
    // legacy element of req 44 that could not be rewritten (no input.prompt).
    expect(s.skipped).toBe(3)
    // Rows written (each once, with its other new columns): moved 5, 6, 7, 34; parents
    // linked 3 (two calls) and 30.
    expect(s.changed).toBe(6)
  })

  it('parent-request-ids: latest candidate at or before the child, same train and conversation', () => {
    expect(row(2).parent_request_id).toBe(req(1))
    expect(row(3).parent_request_id).toBe(req(2))
    expect(row(4).parent_request_id).toBe(req(2))
    // S1's second row followed its first into conversation 1 and resolves there.
    expect(row(6).parent_request_id).toBe(req(5))
    expect(row(23).parent_request_id).toBe(req(21))
    expect(row(25).parent_request_id).toBeNull()
    expect(row(26).parent_request_id).toBe(req(20))
    expect(row(32).parent_request_id).toBe(req(31))
    for (const n of [1, 5, 20, 21, 22, 24]) expect(row(n).parent_request_id).toBeNull()
  })

  it('account-ids: maps trains, only where NULL', () => {
    expect(row(1).account_id).toBe('acc-A')
    expect(row(22).account_id).toBe('acc-B')
    expect(row(60).account_id).toBeNull()
    expect(row(61).account_id).toBe('acc-existing')
    expect(row(64).account_id).toBe('acc-B')
  })

  it('system-hash: the application value; existing and unhashable values untouched', () => {
    expect(row(60).system_hash).toBe('c79b3ef095c081ba754da39d891dcabc33f1e41d5edd4b6681dd5ff3a94c8871')
    expect(row(1).system_hash).toBe(computeSystemHash(CLI))
    expect(row(61).system_hash).toBeNull()
    expect(row(62).system_hash).toBeNull()
    expect(row(63).system_hash).toBe('f'.repeat(64))
    expect(row(64).system_hash).toBe(computeSystemHash(`Large ${bigText.slice(0, 50_000)}`))
    expect(row(65).system_hash).toBeNull()
    const s = first.summaries.find((x) => x.name === 'system-hash')!
    expect(s.skipped).toBe(2) // 61 (empty) and 65 (null)
  })

  it('records every backfill as done in the ledger, with its counts', async () => {
    await inDb(url, async (c) => {
      for (const b of BACKFILLS) {
        const entry = await ledgerRow(c, b.name)
        const s = first.summaries.find((x) => x.name === b.name)!
        expect(entry).toMatchObject({ state: 'done', version: b.version, cursor: null, step: null, last_error: null })
        expect(Number(entry!.rows_changed)).toBe(s.changed)
        expect(Number(entry!.rows_skipped)).toBe(s.skipped)
      }
      // No scratch table is left behind: only the ledger and the chain's online-index queue.
      const { rows: scratch } = await c.query(`select tablename from pg_tables where schemaname = 'migration_hooks' order by 1`)
      expect(scratch.map((r) => r.tablename)).toEqual(['backfills', 'online_index_work'])
    })
  })

  it('ends the same when the row pass meets the rows one page per batch, in other physical orders', async () => {
    // A few rows per page and the smallest batches: a sub-task conversation's rows are moved
    // into the parent's conversation batch by batch, so a row read late finds its parent
    // already moved. parent-request-ids still compares them by the conversation they had.
    const half = (specs: RowSpec[], parity: number) => specs.filter((_, i) => i % 2 === parity)
    const orders: Record<string, () => RowSpec[]> = {
      evens_first: () => [...half(dataset(), 0), ...half(dataset(), 1)],
      odds_first: () => [...half(dataset(), 1), ...half(dataset(), 0)],
    }
    for (const [order, specsOf] of Object.entries(orders)) {
      const spread = await freshDatabase(`hooks_all_spread_${order}`)
      const specs = specsOf()
      await inDb(spread, async (c) => {
        await c.query('alter table api_requests set (fillfactor = 10)')
        await insertRows(c, specs)
      })
      const r = await runQuiet(spread, { env: { ...mappingEnv, HOOKS_BATCH_SIZE: '10', HOOKS_BATCH_TARGET_MS: '0' } })
      expect(r.ok, r.error).toBe(true)
      expect(await inDb(spread, owned), order).toEqual(rows)
    }
  })

  it('a second run changes nothing', async () => {
    const before = await inDb(url, fullSnapshot)
    const second = await runQuiet(url, { env: mappingEnv })
    expect(second.ok).toBe(true)
    expect(second.summaries.every((s) => s.outcome === 'already-done' && s.changed === 0)).toBe(true)
    expect(await inDb(url, fullSnapshot)).toEqual(before)
  })

  it('every backfill re-run from scratch (bumped versions) finds nothing left to change', async () => {
    const before = await inDb(url, fullSnapshot)
    const bumped = BACKFILLS.map((b) => ({ ...b, version: b.version + 1 }))
    const again = await runQuiet(url, { env: mappingEnv, backfills: bumped })
    expect(again.ok).toBe(true)
    expect(again.summaries.map((s) => [s.name, s.outcome, s.changed])).toEqual(BACKFILLS.map((b) => [b.name, 'done', 0]))
    expect(await inDb(url, fullSnapshot)).toEqual(before)
  })
})
