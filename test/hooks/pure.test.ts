/**
 * The pure building blocks of the backfills (no database): Task call extraction, sub-task
 * text, the mapping file's validation, duplicate-key detection and settings.
 */
import { describe, expect, it } from 'vitest'
import { parseAccountMapping } from '../../hooks/rules/account-mapping.js'
import { batchSizer, MIN_BATCH_SIZE } from '../../hooks/runner/batch-sizer.js'
import { findDuplicateKeys } from '../../hooks/rules/json-duplicates.js'
import { progressLine } from '../../hooks/runner/progress.js'
import { loadSettings } from '../../hooks/runner/settings.js'
import { subtaskText } from '../../hooks/rules/subtask-text.js'
import { extractTaskCalls, isLegacyShape, linkCalls, rewriteLegacy } from '../../hooks/rules/task-calls.js'
import type { RowRule } from '../../hooks/runner/row-rule.js'
import { computeBatch } from '../../hooks/runner/row-pass/compute.js'
import { firstPiece, inPageOrder, pageOf, plannedDensity } from '../../hooks/runner/row-pass/pieces.js'
import { batchWrite, columnWriters, type Participant } from '../../hooks/runner/row-pass/sql.js'
import { backoffMs } from '../../lib/retry.js'

const task = (id: unknown, prompt: unknown, extra: Record<string, unknown> = {}) => ({
  type: 'tool_use',
  id,
  name: 'Task',
  input: { prompt, description: 'd' },
  ...extra,
})

describe('extractTaskCalls', () => {
  it('returns {id, name, input} for every Task call, in content order, ignoring other blocks', () => {
    const content = [
      { type: 'text', text: 'x' },
      task('toolu_1', 'one'),
      { type: 'tool_use', id: 'toolu_r', name: 'Read', input: {} },
      'stray string',
      task('toolu_2', 'two'),
    ]
    expect(extractTaskCalls(content)).toEqual({
      kind: 'calls',
      calls: [
        { id: 'toolu_1', name: 'Task', input: { prompt: 'one', description: 'd' } },
        { id: 'toolu_2', name: 'Task', input: { prompt: 'two', description: 'd' } },
      ],
    })
  })

  it('keeps the whole input object, whatever the prompt type', () => {
    const r = extractTaskCalls([task('toolu_1', 42, { input: { prompt: 42, subagent_type: 'general' } })])
    expect(r).toEqual({ kind: 'calls', calls: [{ id: 'toolu_1', name: 'Task', input: { prompt: 42, subagent_type: 'general' } }] })
  })

  it('says none when there is no Task call, malformed for non-array content or a Task block lacking fields', () => {
    expect(extractTaskCalls([{ type: 'text', text: 'x' }])).toEqual({ kind: 'none' })
    expect(extractTaskCalls('text content').kind).toBe('malformed')
    expect(extractTaskCalls(null).kind).toBe('malformed')
    expect(extractTaskCalls([task(undefined, 'p')]).kind).toBe('malformed')
    expect(extractTaskCalls([task('', 'p')]).kind).toBe('malformed')
    expect(extractTaskCalls([{ type: 'tool_use', id: 'toolu_1', name: 'Task' }]).kind).toBe('malformed')
    expect(extractTaskCalls([{ type: 'tool_use', id: 'toolu_1', name: 'Task', input: 'p' }]).kind).toBe('malformed')
  })
})

describe('legacy 003 shape', () => {
  it('is recognised by an element with prompt but no input', () => {
    expect(isLegacyShape([{ id: 'a', name: 'Task', prompt: 'p', description: '' }])).toBe(true)
    expect(isLegacyShape([{ id: 'a', name: 'Task', input: { prompt: 'p' } }])).toBe(false)
    expect(isLegacyShape(null)).toBe(false)
  })

  it('is rewritten from the calls, keeping linked_conversation_id by id, or by position when the id is ""', () => {
    const calls = [
      { id: 't1', name: 'Task', input: { prompt: 'a' } },
      { id: 't2', name: 'Task', input: { prompt: 'b' } },
    ]
    expect(
      rewriteLegacy(
        [
          { id: 't2', prompt: 'b', linked_conversation_id: 'C2' },
          { id: 't1', prompt: 'a' },
        ],
        calls,
      ),
    ).toEqual([
      { id: 't1', name: 'Task', input: { prompt: 'a' } },
      { id: 't2', name: 'Task', input: { prompt: 'b' }, linked_conversation_id: 'C2' },
    ])
    expect(rewriteLegacy([{ id: '', prompt: 'a', linked_conversation_id: 'C1' }], calls)[0].linked_conversation_id).toBe('C1')
    // An id the response does not have links nothing (rather than a wrong call).
    expect(rewriteLegacy([{ id: 'tX', prompt: 'a', linked_conversation_id: 'C1' }], calls).some((c) => c.linked_conversation_id)).toBe(
      false,
    )
  })
})

describe('linkCalls', () => {
  const calls = [
    { id: 'toolu_1', name: 'Task', input: { prompt: 'one' } },
    { id: 'toolu_2', name: 'Task', input: { prompt: 'two' } },
  ]
  it('sets linked_conversation_id on the matched positions and leaves the others as they are', () => {
    const r = linkCalls(calls, [{ position: 2, conversation: 'c2', call: 'toolu_2' }])
    expect(r).toEqual({ kind: 'linked', value: [calls[0], { ...calls[1], linked_conversation_id: 'c2' }] })
    expect(calls[1]).not.toHaveProperty('linked_conversation_id')
  })
  it('is unchanged when every link is already there, and refuses another call at the position', () => {
    const linked = [calls[0], { ...calls[1], linked_conversation_id: 'c2' }]
    expect(linkCalls(linked, [{ position: 2, conversation: 'c2', call: 'toolu_2' }])).toEqual({ kind: 'unchanged' })
    expect(linkCalls(calls, [{ position: 1, conversation: 'c1', call: 'toolu_2' }]).kind).toBe('mismatch')
    expect(linkCalls(calls, [{ position: 3, conversation: 'c3', call: null }]).kind).toBe('mismatch')
    expect(linkCalls(null, [{ position: 1, conversation: 'c1', call: null }]).kind).toBe('mismatch')
    // Linked to another conversation meanwhile: that link is kept, nothing written.
    expect(linkCalls(linked, [{ position: 2, conversation: 'c9', call: 'toolu_2' }]).kind).toBe('mismatch')
  })
})

describe('row rules sharing a column', () => {
  const rule = (over: Partial<RowRule>): RowRule => ({
    column: 'task_tool_invocation',
    type: 'jsonb',
    pending: 'true',
    read: {},
    compute: () => null,
    guard: 'unchanged',
    ...over,
  })
  const fill = rule({ compute: () => ({ value: ['a'] }) })
  const append = rule({ compute: (row) => ({ value: [...(row.old as string[]), 'b'] }) })
  const participants: Participant[] = [
    { name: 'fill', rule: fill, input: null },
    { name: 'append', rule: append, input: null },
  ]
  it('compose in order: the later rule builds on the earlier value, both carry the last one, the guard keeps the value read', () => {
    const row = { tid: '(0,1)', id: 'r1', r0_pending: true, r0_old: null, r1_pending: true, r1_old: null }
    const { records, counts } = computeBatch(participants, [row])
    expect(records).toEqual([
      { tid: '(0,1)', id: 'r1', r0_set: true, r0_value: ['a', 'b'], r0_old: null, r1_set: true, r1_value: ['a', 'b'], r1_old: null },
    ])
    expect(counts).toEqual([
      { planned: 1, skipped: 0 },
      { planned: 1, skipped: 0 },
    ])
    // One assignment of the column in the UPDATE, whichever rule applies.
    expect(batchWrite(participants, true).match(/task_tool_invocation = case/g)).toHaveLength(1)
  })
  it('a column set with another one belongs to that rule alone', () => {
    const moving = rule({ column: 'parent_task_request_id', type: 'uuid', guard: 'still-null', also: { conversation_id: 'uuid' } })
    const clash = rule({ column: 'conversation_id', type: 'uuid' })
    expect(() =>
      columnWriters([
        { name: 'a', rule: moving, input: null },
        { name: 'b', rule: clash, input: null },
      ]),
    ).toThrow(/conversation_id/)
    expect(batchWrite([{ name: 'a', rule: moving, input: null }], true)).toMatch(
      /conversation_id = case when .* then v\.r0_also_conversation_id/,
    )
  })
})

describe('subtaskText', () => {
  it('is the string content of a single user message', () => {
    expect(subtaskText([{ role: 'user', content: 'Research the parser' }])).toEqual({ kind: 'text', text: 'Research the parser' })
  })

  it('joins the text blocks with "\\n", dropping empty texts and non-text blocks', () => {
    const content = [
      { type: 'text', text: 'a' },
      { type: 'text', text: '' },
      { type: 'image', source: {} },
      { type: 'text', text: 'b' },
    ]
    expect(subtaskText([{ role: 'user', content }])).toEqual({ kind: 'text', text: 'a\nb' })
  })

  it('removes system reminders with the whitespace before them, and nothing else', () => {
    const content = [
      { type: 'text', text: 'Write the tests' },
      { type: 'text', text: '<system-reminder>ctx</system-reminder>' },
    ]
    expect(subtaskText([{ role: 'user', content }])).toEqual({ kind: 'text', text: 'Write the tests' })
    expect(subtaskText([{ role: 'user', content: ' padded ' }])).toEqual({ kind: 'text', text: ' padded ' })
  })

  it('is not a candidate with several messages, a non-user role, or no text', () => {
    expect(
      subtaskText([
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
      ]).kind,
    ).toBe('not-candidate')
    expect(subtaskText([{ role: 'assistant', content: 'a' }]).kind).toBe('not-candidate')
    expect(subtaskText([{ role: 'user', content: '<system-reminder>x</system-reminder>' }]).kind).toBe('not-candidate')
  })

  it('is malformed without a messages array, or with content of another type', () => {
    expect(subtaskText(undefined).kind).toBe('malformed')
    expect(subtaskText('hello').kind).toBe('malformed')
    expect(subtaskText([{ role: 'user', content: 42 }]).kind).toBe('malformed')
    expect(subtaskText([{ role: 'user', content: [{ type: 'text', text: 7 }] }]).kind).toBe('malformed')
    expect(subtaskText(['x']).kind).toBe('malformed')
  })
})

describe('findDuplicateKeys', () => {
  it('finds duplicates at any depth, and none where keys only repeat across objects or as values', () => {
    expect(findDuplicateKeys('{"a": 1, "b": 2, "a": 3}')).toEqual([{ key: 'a', path: '' }])
    expect(findDuplicateKeys('{"x": {"k": 1, "k": 2}}')).toEqual([{ key: 'k', path: '/x' }])
    expect(findDuplicateKeys('[{"a": "a"}, {"a": "b"}]')).toEqual([])
    expect(findDuplicateKeys('{"a": "b", "b": "a"}')).toEqual([])
    expect(findDuplicateKeys('{"q\\"uote": 1, "q\\u0022uote": 2}')).toEqual([{ key: 'q"uote', path: '' }])
  })
})

describe('parseAccountMapping', () => {
  const parse = (text: string) => parseAccountMapping(text, '/etc/mapping.json')

  it('accepts an object of non-empty strings and fingerprints it independently of key order', () => {
    const a = parse('{"train-a": "acc-1", "train-b": "acc-2"}')
    expect(a.entries).toEqual({ 'train-a': 'acc-1', 'train-b': 'acc-2' })
    expect(parse('{"train-b": "acc-2", "train-a": "acc-1"}').fingerprint).toBe(a.fingerprint)
    expect(parse('{"train-b": "acc-3", "train-a": "acc-1"}').fingerprint).not.toBe(a.fingerprint)
  })

  it.each([
    ['{"train-a": "acc", "train-a": "other"}', /entry "train-a" appears more than once/],
    ['{"train-a": ""}', /entry "train-a": the account id must not be empty/],
    ['{"train-a": 5}', /entry "train-a": the account id must be a string/],
    ['{"train-a": {"id": "x"}}', /entry "train-a": the account id must be a string/],
    ['{"": "acc"}', /entry "": the train id must not be empty/],
    ['{"train-a": " acc"}', /entry "train-a": the account id has leading or trailing spaces/],
    ['["train-a"]', /one JSON object/],
    ['{"train-a": "acc",}', /not valid JSON/],
  ])('rejects %s, naming the file and the entry', (text, message) => {
    expect(() => parse(text)).toThrow(message)
    expect(() => parse(text)).toThrow('ACCOUNT_MAPPING_FILE "/etc/mapping.json"')
  })
})

describe('loadSettings', () => {
  it('has the documented defaults', () => {
    expect(loadSettings({})).toEqual({
      batchSize: 400,
      batchTargetMs: 45,
      batchDelayMs: 0,
      lockTimeoutMs: 2000,
      statementTimeoutMs: 30000,
      maxRetries: 5,
      subtaskWindowMs: 60000,
      lockWaitSeconds: 300,
      progressIntervalMs: 5000,
      inlineMaxRows: 10000,
      workers: 1,
      claimLeaseSeconds: 60,
      reclaimEveryPercent: 10,
      health: {
        enabled: true,
        maxReplicaLagSeconds: 1,
        maxReplicaLagMb: 64,
        maxSlotRetainedMb: 1024,
        maxArchiveBacklogSegments: 42,
        maxAutovacuumWaitSeconds: 600,
        maxThrottleWaitSeconds: 0,
        checkIntervalMs: 1000,
      },
      accountMappingFile: undefined,
    })
  })

  it('reads the throttle settings, and names the one that is wrong', () => {
    const health = loadSettings({ HOOKS_THROTTLE: 'OFF', HOOKS_MAX_REPLICA_LAG_SECONDS: '0.5', HOOKS_MAX_REPLICA_LAG_MB: '0' }).health
    expect(health).toMatchObject({ enabled: false, maxReplicaLagSeconds: 0.5, maxReplicaLagMb: 0 })
    expect(() => loadSettings({ HOOKS_THROTTLE: 'no' })).toThrow(/^HOOKS_THROTTLE must be "on" or "off" \(got "no"\)/)
    expect(() => loadSettings({ HOOKS_MAX_REPLICA_LAG_SECONDS: '1s' })).toThrow(
      /^HOOKS_MAX_REPLICA_LAG_SECONDS must be a number of seconds/,
    )
    for (const name of [
      'HOOKS_MAX_REPLICA_LAG_MB',
      'HOOKS_MAX_SLOT_RETAINED_MB',
      'HOOKS_MAX_ARCHIVE_BACKLOG_SEGMENTS',
      'HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS',
      'HOOKS_MAX_THROTTLE_WAIT_SECONDS',
      'HOOKS_HEALTH_CHECK_MS',
    ]) {
      expect(() => loadSettings({ [name]: '-1' })).toThrow(new RegExp(`^${name} must be a whole number`))
    }
  })

  it.each([
    ['HOOKS_BATCH_SIZE', '0'],
    ['HOOKS_BATCH_SIZE', 'lots'],
    ['HOOKS_BATCH_SIZE', '10.5'],
    ['HOOKS_BATCH_TARGET_MS', '-5'],
    ['HOOKS_LOCK_TIMEOUT_MS', '-1'],
    ['HOOKS_WORKERS', '0'],
    ['HOOKS_WORKERS', 'two'],
    ['HOOKS_MAX_RETRIES', '1e3'],
    ['HOOKS_SUBTASK_WINDOW_MS', '60s'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadSettings({ [name]: value })).toThrow(new RegExp(`^${name} must be a whole number`))
  })

  it('backs off exponentially', () => {
    expect([1, 2, 3, 4].map(backoffMs)).toEqual([100, 200, 400, 800])
  })
})

describe('batchSizer', () => {
  it('starts at a quarter of the ceiling and scales toward the target, at most halving or growing by a quarter', () => {
    const sizer = batchSizer(400, 150)
    expect(sizer.size()).toBe(100)
    sizer.observe(200, 400) // 150/200 = 0.75
    expect(sizer.size()).toBe(300)
    sizer.observe(3000, 300) // far too slow: halved, not divided by 20
    expect(sizer.size()).toBe(150)
    sizer.observe(50, 150) // fast: grows by a quarter, not tripled
    expect(sizer.size()).toBe(188)
    sizer.observe(10, 380) // scaled from the size that batch had, capped at the ceiling
    expect(sizer.size()).toBe(400)
  })

  it('never goes below MIN_BATCH_SIZE, or below a smaller ceiling', () => {
    const sizer = batchSizer(400, 150)
    for (let i = 0; i < 20; i++) sizer.observe(10_000, sizer.size())
    expect(sizer.size()).toBe(MIN_BATCH_SIZE)
    const tiny = batchSizer(5, 1)
    expect(tiny.size()).toBe(5)
    tiny.observe(10_000, 5)
    expect(tiny.size()).toBe(5)
  })

  it('is shown in the plain progress line', () => {
    expect(progressLine('system-hash', 12000, 100000, 4000, 380)).toBe('system-hash: 12000/100000 rows, 3000 rows/s, ETA 29s, batch 380')
    expect(progressLine('apply', 5, 3, 1000)).toBe('apply: 5/5 rows, 5 rows/s, ETA 0s')
  })

  it('ignores a small remainder done within the target, but not a slow one', () => {
    const sizer = batchSizer(400, 100)
    sizer.observe(80, 100) // 100 → 125
    sizer.observe(80, 125) // → 156
    expect(sizer.size()).toBe(156)
    sizer.observe(10, 10) // the end of a range: says nothing about 156 rows
    expect(sizer.size()).toBe(156)
    sizer.observe(300, 40) // slow even though small: halved from what it had
    expect(sizer.size()).toBe(20)
  })

  it('keeps the size fixed with a target of 0', () => {
    const sizer = batchSizer(400, 0)
    sizer.observe(10_000, 400)
    expect(sizer.size()).toBe(400)
  })
})

describe("the walk's pieces", () => {
  // Rows of pages 10 (3 rows), 11 (1), 13 (4): a range read of pages [10, 20).
  const rows = [...[1, 2, 3].map((i) => ({ tid: `(10,${i})` })), { tid: '(11,1)' }, ...[1, 2, 3, 4].map((i) => ({ tid: `(13,${i})` }))]
  const shape = (p: { from: number; to: number; rows: unknown[] }) => [p.from, p.to, p.rows.length]

  it('cuts between pages, at most the size in rows, the last piece ending where the range does', () => {
    expect(shape(firstPiece(rows, 10, 20, 8))).toEqual([10, 20, 8])
    expect(shape(firstPiece(rows, 10, 20, 5))).toEqual([10, 13, 4]) // not into page 13
    expect(shape(firstPiece(rows, 10, 20, 3))).toEqual([10, 11, 3])
    expect(shape(firstPiece(rows.slice(3), 11, 20, 3))).toEqual([11, 13, 1])
  })

  it('takes a page whole when it alone holds more rows than the size', () => {
    expect(shape(firstPiece(rows, 10, 20, 2))).toEqual([10, 11, 3])
    expect(shape(firstPiece(rows.slice(4), 13, 20, 2))).toEqual([13, 20, 4])
    expect(shape(firstPiece([], 13, 20, 2))).toEqual([13, 20, 0])
  })

  it('orders rows by page and item, and refuses a ctid it cannot read', () => {
    expect(inPageOrder([{ tid: '(13,2)' }, { tid: '(2,10)' }, { tid: '(13,1)' }, { tid: '(2,9)' }]).map((r) => r.tid)).toEqual([
      '(2,9)',
      '(2,10)',
      '(13,1)',
      '(13,2)',
    ])
    expect(pageOf('(4294967294,1)')).toBe(4294967294)
    expect(() => pageOf('13,1')).toThrow(/unexpected ctid/)
  })

  it('plans the next range from the density just read, never below a quarter of the average', () => {
    expect(plannedDensity(0, 0, 7.5)).toBe(7.5)
    expect(plannedDensity(240, 20, 7.5)).toBe(12)
    expect(plannedDensity(0, 20, 8)).toBe(2)
    expect(plannedDensity(3, 1, 0.2)).toBe(3)
  })
})
