/**
 * Sub-task linking per docs/subtasks.md: the worked example, the greedy
 * nearest-call assignment and its tie-breaking, the window, numbering, and what is never touched.
 * Each case runs task-invocations then subtask-links on a database of its own.
 */
import { describe, expect, it } from 'vitest'
import { subtaskLinks } from '../../hooks/backfills/subtask-links.js'
import { taskInvocations } from '../../hooks/backfills/task-invocations.js'
import { ensureLedger } from '../../hooks/runner/ledger.js'
import { freshDatabase, inDb } from './support/template-databases.js'
import {
  appShape,
  conv,
  firstRequest,
  followUp,
  insertRows,
  owned,
  req,
  runQuiet,
  runStoppedAt,
  taskResponse,
  textResponse,
  type RowSpec,
} from './support/fixtures.js'

const T = (hms: string) => `2025-05-06T${hms}Z`

async function link(rows: RowSpec[], env: NodeJS.ProcessEnv = {}) {
  const url = await freshDatabase('subtask')
  await inDb(url, (c) => insertRows(c, rows))
  const result = await runQuiet(url, { backfills: [taskInvocations, subtaskLinks], env })
  expect(result.ok, result.error).toBe(true)
  const after = await inDb(url, owned)
  return { url, result, row: (n: number) => after.get(req(n))! }
}

const linked = (parent: number, conversation: string, branch: string) => ({
  parent_task_request_id: req(parent),
  is_subtask: true,
  conversation_id: conversation,
  branch_id: branch,
})
const untouched = (conversation: string) => ({
  parent_task_request_id: null,
  is_subtask: false,
  conversation_id: conversation,
  branch_id: 'main',
})

describe('subtask-links', () => {
  it('reproduces the worked example of subtasks.md exactly', async () => {
    const C = conv(1)
    const { row } = await link([
      { id: req(1), ts: T('10:00:00'), conversation: C, body: firstRequest('Plan the work'), response: textResponse() },
      {
        id: req(2),
        ts: T('10:02:00'),
        duration: 100,
        conversation: C,
        body: followUp(1),
        response: taskResponse([
          { id: 'toolu_1', prompt: 'Research the parser' },
          { id: 'toolu_2', prompt: 'Write the tests' },
        ]),
      },
      { id: req(10), ts: T('10:02:05'), conversation: conv(11), body: firstRequest('Research the parser'), response: textResponse() },
      { id: req(11), ts: T('10:02:40'), conversation: conv(11), body: followUp(1), response: textResponse() },
      {
        id: req(20),
        ts: T('10:02:07'),
        conversation: conv(12),
        body: firstRequest([{ type: 'text', text: 'Write the tests' }]),
        response: textResponse(),
      },
      { id: req(30), ts: T('10:06:40'), conversation: conv(13), body: firstRequest('Write the tests'), response: textResponse() },
    ])
    expect(row(2).task_tool_invocation).toEqual([
      { id: 'toolu_1', name: 'Task', input: { description: 'task', prompt: 'Research the parser' }, linked_conversation_id: conv(11) },
      { id: 'toolu_2', name: 'Task', input: { description: 'task', prompt: 'Write the tests' }, linked_conversation_id: conv(12) },
    ])
    expect(row(10)).toMatchObject(linked(2, C, 'subtask_1'))
    expect(row(11)).toMatchObject(linked(2, C, 'subtask_1'))
    expect(row(20)).toMatchObject(linked(2, C, 'subtask_2'))
    expect(row(30)).toMatchObject(untouched(conv(13)))
    expect(row(1)).toMatchObject(untouched(C))
  })

  it('gives each conversation the nearest unclaimed call before it, in first-row order', async () => {
    // Two parents with the same prompt, 30 s apart. The first sub-task conversation takes the
    // nearer (later) parent; the second, finding it claimed, takes the earlier one.
    const { row } = await link([
      {
        id: req(1),
        ts: T('09:00:00'),
        duration: 0,
        conversation: conv(1),
        body: firstRequest('a'),
        response: taskResponse([{ id: 't1', prompt: 'Same job' }]),
      },
      {
        id: req(2),
        ts: T('09:00:30'),
        duration: 0,
        conversation: conv(2),
        body: firstRequest('b'),
        response: taskResponse([{ id: 't2', prompt: 'Same job' }]),
      },
      { id: req(10), ts: T('09:00:40'), conversation: conv(10), body: firstRequest('Same job') },
      { id: req(11), ts: T('09:00:50'), conversation: conv(11), body: firstRequest('Same job') },
      // A third has no call left.
      { id: req(12), ts: T('09:00:55'), conversation: conv(12), body: firstRequest('Same job') },
    ])
    expect(row(10)).toMatchObject(linked(2, conv(2), 'subtask_1'))
    expect(row(11)).toMatchObject(linked(1, conv(1), 'subtask_1'))
    expect(row(12)).toMatchObject(untouched(conv(12)))
  })

  it('breaks ties by parent request_id, then call position; conversations tie by first row request_id', async () => {
    // Parents 3 and 4 at the same instant; parent 3 calls the same prompt twice.
    const { row } = await link([
      {
        id: req(4),
        ts: T('09:00:00'),
        conversation: conv(4),
        body: firstRequest('p4'),
        response: taskResponse([{ id: 't4', prompt: 'Twin' }]),
      },
      {
        id: req(3),
        ts: T('09:00:00'),
        conversation: conv(3),
        body: firstRequest('p3'),
        response: taskResponse([
          { id: 't3a', prompt: 'Twin' },
          { id: 't3b', prompt: 'Twin' },
        ]),
      },
      // Three conversations starting at the same instant: ordered by their first row's id.
      { id: req(12), ts: T('09:00:10'), conversation: conv(20), body: firstRequest('Twin') },
      { id: req(11), ts: T('09:00:10'), conversation: conv(21), body: firstRequest('Twin') },
      { id: req(13), ts: T('09:00:10'), conversation: conv(22), body: firstRequest('Twin') },
    ])
    expect(row(11)).toMatchObject(linked(3, conv(3), 'subtask_1'))
    expect(row(12)).toMatchObject(linked(3, conv(3), 'subtask_2'))
    expect(row(13)).toMatchObject(linked(4, conv(4), 'subtask_1'))
    const calls = row(3).task_tool_invocation as Array<{ id: string; linked_conversation_id?: string }>
    expect(calls.map((c) => [c.id, c.linked_conversation_id])).toEqual([
      ['t3a', conv(21)],
      ['t3b', conv(20)],
    ])
  })

  it('honours the window: parent time + duration + HOOKS_SUBTASK_WINDOW_MS, inclusive; never before the parent', async () => {
    const rows: RowSpec[] = [
      {
        id: req(1),
        ts: T('08:00:00.000'),
        duration: 1500,
        conversation: conv(1),
        body: firstRequest('a'),
        response: taskResponse([
          { id: 't1', prompt: 'Edge' },
          { id: 't2', prompt: 'Late' },
          { id: 't3', prompt: 'Early' },
        ]),
      },
      {
        id: req(2),
        ts: T('08:00:00.000'),
        duration: null,
        conversation: conv(2),
        body: firstRequest('b'),
        response: taskResponse([
          { id: 't4', prompt: 'No duration' },
          { id: 't5', prompt: 'No duration' },
        ]),
      },
      // 1.5 s + 10 s after: exactly at the end of the window.
      { id: req(10), ts: T('08:00:11.500'), conversation: conv(10), body: firstRequest('Edge') },
      // 1 ms past it.
      { id: req(11), ts: T('08:00:11.501'), conversation: conv(11), body: firstRequest('Late') },
      // Before the parent.
      { id: req(12), ts: T('07:59:59.999'), conversation: conv(12), body: firstRequest('Early') },
      // No duration: the window is counted from the parent's timestamp (a second call is
      // free, so only the window keeps the later conversation out).
      { id: req(13), ts: T('08:00:10.000'), conversation: conv(13), body: firstRequest('No duration') },
      { id: req(14), ts: T('08:00:10.001'), conversation: conv(14), body: firstRequest('No duration') },
    ]
    const { row } = await link(rows, { HOOKS_SUBTASK_WINDOW_MS: '10000' })
    expect(row(10)).toMatchObject(linked(1, conv(1), 'subtask_1'))
    expect(row(11)).toMatchObject(untouched(conv(11)))
    expect(row(12)).toMatchObject(untouched(conv(12)))
    expect(row(13)).toMatchObject(linked(2, conv(2), 'subtask_1'))
    expect(row(14)).toMatchObject(untouched(conv(14)))
  })

  it('numbers per parent conversation by first-row time, after the largest existing subtask_K', async () => {
    const C = conv(1)
    const { row } = await link([
      { id: req(1), ts: T('10:00:00'), conversation: C, body: firstRequest('root') },
      { id: req(2), ts: T('10:00:10'), conversation: C, body: followUp(1), response: taskResponse([{ id: 'ta', prompt: 'Alpha' }]) },
      { id: req(3), ts: T('10:00:20'), conversation: C, body: followUp(2), response: taskResponse([{ id: 'tb', prompt: 'Beta' }]) },
      // Existing branches (numbers need not be contiguous); a non-numeric one is ignored.
      { id: req(4), ts: T('09:00:00'), conversation: C, branch: 'subtask_3', body: followUp(1) },
      { id: req(5), ts: T('09:00:01'), conversation: C, branch: 'subtask_x', body: followUp(1) },
      // Beta's sub-task starts before Alpha's: it is numbered first although its parent is later.
      { id: req(10), ts: T('10:00:25'), conversation: conv(10), body: firstRequest('Alpha') },
      { id: req(11), ts: T('10:00:21'), conversation: conv(11), body: firstRequest('Beta') },
      { id: req(12), ts: T('10:00:30'), conversation: conv(11), body: followUp(1) },
    ])
    expect(row(11)).toMatchObject(linked(3, C, 'subtask_4'))
    expect(row(12)).toMatchObject(linked(3, C, 'subtask_4'))
    expect(row(10)).toMatchObject(linked(2, C, 'subtask_5'))
  })

  it('numbers a parent whole when its matches straddle a batch (HOOKS_BATCH_SIZE=2)', async () => {
    // Three sub-tasks of conv(1), two of conv(2): batches of two matches split conv(1)'s.
    const parent = (n: number, ts: string, prompts: string[]) => [
      { id: req(n), ts: T(ts), conversation: conv(n), body: firstRequest(`root ${n}`) },
      {
        id: req(n + 1),
        ts: T(ts.replace(/:00$/, ':01')),
        conversation: conv(n),
        body: followUp(1),
        response: taskResponse(prompts.map((prompt, i) => ({ id: `t${n}_${i}`, prompt }))),
      },
    ]
    const child = (n: number, ts: string, prompt: string) => ({ id: req(n), ts: T(ts), conversation: conv(n), body: firstRequest(prompt) })
    const { row } = await link(
      [
        ...parent(1, '10:00:00', ['A1', 'A2', 'A3']),
        ...parent(5, '10:10:00', ['B1', 'B2']),
        child(20, '10:00:05', 'A3'),
        child(21, '10:00:06', 'A1'),
        child(22, '10:00:07', 'A2'),
        child(30, '10:10:05', 'B2'),
        child(31, '10:10:06', 'B1'),
      ],
      { HOOKS_BATCH_SIZE: '2', HOOKS_BATCH_TARGET_MS: '0' },
    )
    expect([20, 21, 22].map((n) => row(n).branch_id)).toEqual(['subtask_1', 'subtask_2', 'subtask_3'])
    expect([30, 31].map((n) => row(n).branch_id)).toEqual(['subtask_1', 'subtask_2'])
    expect([20, 21, 22].map((n) => row(n).conversation_id)).toEqual([conv(1), conv(1), conv(1)])
    expect([30, 31].map((n) => row(n).conversation_id)).toEqual([conv(5), conv(5)])
  })

  it("never links a conversation to its own parent's conversation, nor re-links linked rows", async () => {
    const { row } = await link([
      // The parent's own conversation begins with the very prompt it delegates.
      {
        id: req(1),
        ts: T('10:00:00'),
        conversation: conv(1),
        body: firstRequest('Loop'),
        response: taskResponse([{ id: 't1', prompt: 'Loop' }]),
      },
      // A conversation of which one row is already linked elsewhere: never a candidate.
      { id: req(2), ts: T('10:00:01'), conversation: conv(2), body: firstRequest('Loop') },
      { id: req(3), ts: T('10:00:02'), conversation: conv(2), body: followUp(1), parentTask: req(1), isSubtask: true, branch: 'subtask_9' },
    ])
    expect(row(1)).toMatchObject(untouched(conv(1)))
    expect(row(2)).toMatchObject(untouched(conv(2)))
    expect(row(3)).toMatchObject({ parent_task_request_id: req(1), conversation_id: conv(2), branch_id: 'subtask_9' })
    expect((row(1).task_tool_invocation as Array<Record<string, unknown>>)[0].linked_conversation_id).toBeUndefined()
  })

  // The two prompts in one scan-calls batch, and in batches of one row each: the scratch table
  // of prompts must find the shared md5 either way.
  it.each([
    ['one batch', {}],
    ['a batch per row', { HOOKS_BATCH_SIZE: '1', HOOKS_BATCH_TARGET_MS: '0' }],
  ])('matches by the text itself when two prompts share an md5 (%s; the scratch table keeps only md5s otherwise)', async (_, env) => {
    // Two printable strings with the same md5, differing in one character.
    const [A, B] = [
      'TEXTCOLLBYfGiJUETHQ4hAcKSMd5zYpgqf1YRDhkmxHkhPWptrkoyz28wnI9V0aHeAuaKnak',
      'TEXTCOLLBYfGiJUETHQ4hEcKSMd5zYpgqf1YRDhkmxHkhPWptrkoyz28wnI9V0aHeAuaKnak',
    ]
    const { row } = await link(
      [
        // The nearer call has prompt B: conversation 10 (text A) must skip it for the farther A.
        {
          id: req(1),
          ts: T('10:00:00'),
          conversation: conv(1),
          body: firstRequest('a'),
          response: taskResponse([{ id: 't1', prompt: A }]),
        },
        {
          id: req(2),
          ts: T('10:00:20'),
          conversation: conv(2),
          body: firstRequest('b'),
          response: taskResponse([{ id: 't2', prompt: B }]),
        },
        { id: req(10), ts: T('10:00:30'), conversation: conv(10), body: firstRequest(A) },
        { id: req(11), ts: T('10:00:40'), conversation: conv(11), body: firstRequest(B) },
        // Its md5 has a call, its text none (both calls are claimed by then, and it is A).
        { id: req(12), ts: T('10:00:50'), conversation: conv(12), body: firstRequest(A) },
      ],
      env,
    )
    expect(row(10)).toMatchObject(linked(1, conv(1), 'subtask_1'))
    expect(row(11)).toMatchObject(linked(2, conv(2), 'subtask_1'))
    expect(row(12)).toMatchObject(untouched(conv(12)))
  })

  it('treats a call already marked linked (legacy 003) as claimed', async () => {
    const { row } = await link([
      {
        id: req(1),
        ts: T('10:00:00'),
        conversation: conv(1),
        body: firstRequest('a'),
        response: taskResponse([{ id: 't1', prompt: 'Marked' }]),
        tti: [{ id: 't1', name: 'Task', input: { prompt: 'Marked' }, linked_conversation_id: conv(50) }],
      },
      { id: req(2), ts: T('10:00:05'), conversation: conv(2), body: firstRequest('Marked') },
    ])
    expect(row(2)).toMatchObject(untouched(conv(2)))
  })

  it('matches the text with reminders removed, and counts malformed first rows as skipped', async () => {
    const { row, result } = await link([
      {
        id: req(1),
        ts: T('10:00:00'),
        conversation: conv(1),
        body: firstRequest('a'),
        response: taskResponse([{ id: 't1', prompt: 'Fix the bug' }]),
      },
      {
        id: req(2),
        ts: T('10:00:03'),
        conversation: conv(2),
        body: firstRequest([
          { type: 'text', text: 'Fix the bug' },
          { type: 'text', text: '<system-reminder>todo list empty</system-reminder>' },
        ]),
      },
      { id: req(3), ts: T('10:00:04'), conversation: conv(3), body: { model: 'm' } },
      { id: req(4), ts: T('10:00:05'), conversation: conv(4), body: firstRequest(42) },
    ])
    expect(row(2)).toMatchObject(linked(1, conv(1), 'subtask_1'))
    expect(result.summaries.find((s) => s.name === 'subtask-links')!.skipped).toBe(2)
  })

  it('lets the walk reuse the Task blocks scan-calls read, only for rows unchanged since the scan began', async () => {
    const url = await freshDatabase('subtask_seen')
    const parent = (n: number, prompt: string) => ({
      id: req(n),
      ts: T(`10:0${n}:00`),
      conversation: conv(n),
      body: firstRequest(`Work ${n}`),
      response: taskResponse([{ id: `toolu_${n}`, prompt }]),
    })
    await inDb(url, (c) =>
      insertRows(c, [
        parent(1, 'Unchanged since the scan'),
        { id: req(2), ts: T('10:02:00'), conversation: conv(2), body: firstRequest('Work 2'), response: textResponse() },
        parent(3, 'Rewritten after the scan'),
      ]),
    )
    await inDb(url, (c) => ensureLedger(c)) // the gate's table, as the hooks create it
    // Stop once scan-calls has covered every key (its last batch, which marks the blocks
    // complete, moves the ledger on to the next step), before the walk.
    const stopped = await runStoppedAt(
      url,
      `old.name = 'subtask-links' and old.step = 'scan-calls' and new.step = 'conversation-texts'`,
      { backfills: [taskInvocations, subtaskLinks] },
      'migration_hooks.backfills',
    )
    expect(stopped.stopped, `${stopped.error} ${stopped.log.join('\n')}`).toBe(true)
    await inDb(url, async (c) => {
      const { rows: since } = await c.query(`select complete from migration_hooks.task_blocks_seen_since`)
      expect(since).toEqual([{ complete: true }])
      // What scan-calls kept: the blocks of the two rows with Task calls, none for the other.
      const { rows } = await c.query(`select request_id::text as id from migration_hooks.task_blocks_seen order by 1`)
      expect(rows.map((r) => r.id)).toEqual([req(1), req(3)])
      // Marked so that using them shows: rows 1 and 3 get another description in the cache.
      await c.query(
        `update migration_hooks.task_blocks_seen
            set blocks = jsonb_set(blocks, '{0,input,description}', '"as the scan saw it"') where request_id in ($1, $2)`,
        [req(1), req(3)],
      )
      // The application writes rows 2 and 3 after the scan: a new version each.
      await c.query(`update public.api_requests set response_body = $2 where request_id = $1`, [
        req(2),
        JSON.stringify(taskResponse([{ id: 'toolu_2', prompt: 'Added after the scan' }])),
      ])
      await c.query(`update public.api_requests set model = 'rewritten' where request_id = $1`, [req(3)])
    })
    const resumed = await runQuiet(url, { backfills: [taskInvocations, subtaskLinks] })
    expect(resumed.ok, resumed.error).toBe(true)
    const after = await inDb(url, owned)
    const description = (n: number) =>
      (after.get(req(n))!.task_tool_invocation as Array<{ input: { description: string } }>)[0].input.description
    // Unchanged: the walk took the blocks the scan read (not its response again).
    expect(description(1)).toBe('as the scan saw it')
    // Written after the scan began: read from the response, as it is now.
    expect(after.get(req(2))!.task_tool_invocation).toEqual(appShape([{ id: 'toolu_2', prompt: 'Added after the scan' }]))
    expect(description(3)).toBe('task')
    // Gone with the pass.
    const left = await inDb(url, async (c) => (await c.query(`select to_regclass('migration_hooks.task_blocks_seen') as t`)).rows[0].t)
    expect(left).toBeNull()
  })

  it('analyzes each scratch table when the step filling it is done, before later steps plan on it', async () => {
    const url = await freshDatabase('subtask_stats')
    await inDb(url, (c) =>
      insertRows(c, [
        {
          id: req(1),
          ts: T('10:00:00'),
          conversation: conv(1),
          body: firstRequest('Work'),
          response: taskResponse([{ id: 'toolu_1', prompt: 'Look around' }]),
        },
        { id: req(2), ts: T('10:00:05'), conversation: conv(2), body: firstRequest('Look around') },
      ]),
    )
    await inDb(url, (c) => ensureLedger(c))
    // Stopped when match's last batch moves the ledger on to numbering: every filling step is done.
    const stopped = await runStoppedAt(
      url,
      `old.name = 'subtask-links' and old.step = 'match' and new.step = 'number'`,
      { backfills: [taskInvocations, subtaskLinks] },
      'migration_hooks.backfills',
    )
    expect(stopped.stopped, `${stopped.error} ${stopped.log.join('\n')}`).toBe(true)
    const analyzed = await inDb(url, async (c) => {
      // last_analyze is set by an explicit ANALYZE only (autovacuum sets last_autoanalyze);
      // reltuples stays -1 on a table never analyzed or vacuumed.
      const { rows } = await c.query(
        `select s.relname, s.last_analyze is not null as analyzed, c.reltuples::int as reltuples
           from pg_stat_user_tables s join pg_class c on c.oid = s.relid
          where s.schemaname = 'migration_hooks' and s.relname like 'subtask\\_%' order by 1`,
      )
      return rows
    })
    expect(analyzed).toEqual([
      { relname: 'subtask_calls', analyzed: true, reltuples: 1 },
      { relname: 'subtask_conversations', analyzed: true, reltuples: 2 },
      { relname: 'subtask_existing_links', analyzed: true, reltuples: 0 },
      { relname: 'subtask_matches', analyzed: true, reltuples: 1 },
      { relname: 'subtask_prompts', analyzed: true, reltuples: 1 },
    ])
  })
})
