/**
 * A generated, deterministic data set with the shapes production has: conversations with
 * branches and retried (duplicate-hash) requests, responses with several Task calls, sub-task
 * conversations of one to three requests (some too late, some with repeated prompts), legacy
 * 003 arrays, malformed rows, several trains and system prompt shapes. Request ids are random,
 * so key order and time order differ — as they do with uuid v4 keys.
 */
import { conv, firstRequest, hash, taskResponse, textResponse, type RowSpec } from './fixtures.js'
import { seededRandom } from '../../../lib/seeded-random.js'

const SYSTEMS: unknown[] = [
  'You are an interactive CLI tool that helps users with software engineering tasks. Rules follow.',
  [
    { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
    { type: 'text', text: 'Persona.\ngitStatus: dirty\nM a.ts\n\nEnd' },
  ],
  'Agent persona.\n<system-reminder>today</system-reminder>\nBe precise.',
  '',
  null,
]

export function generateDataset(seed: number, conversations: number): RowSpec[] {
  const rand = seededRandom(seed)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]
  const uuid = () => {
    const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
  }
  const rows: RowSpec[] = []
  let hashes = 0
  let convs = 0
  const base = Date.UTC(2025, 1, 1, 8, 0, 0)
  const at = (ms: number) => new Date(base + ms).toISOString()

  for (let c = 0; c < conversations; c++) {
    const train = `train-${c % 4}`
    const conversation = conv(++convs)
    const start = c * 600_000 + Math.floor(rand() * 60_000)
    const system = pick(SYSTEMS)
    const chain: Array<{ hash: string; ts: number }> = []
    let lastParentHash: string | null = null
    const length = 2 + Math.floor(rand() * 6)
    for (let i = 0; i < length; i++) {
      const ts = start + i * 30_000
      const h = hash(++hashes)
      // Mostly a chain; sometimes a branch off an earlier request; sometimes a retry that
      // repeats the previous request's hash.
      const retry = i > 0 && rand() < 0.1
      const parent = i === 0 ? undefined : rand() < 0.15 ? chain[Math.floor(rand() * chain.length)] : chain[chain.length - 1]
      const taskCount = rand() < 0.35 ? 1 + Math.floor(rand() * 3) : 0
      const calls = Array.from({ length: taskCount }, (_, k) => ({
        id: `toolu_${c}_${i}_${k}`,
        // Some prompts repeat across parents, to exercise nearest-call assignment.
        prompt: rand() < 0.2 ? `Shared job ${c % 3}` : `Job ${c}.${i}.${k}`,
      }))
      const legacy = taskCount > 0 && rand() < 0.2
      const malformed = rand() < 0.04
      const id = uuid()
      rows.push({
        id,
        ts: at(ts),
        train,
        conversation,
        branch: i > 0 && parent !== chain[chain.length - 1] ? `branch_${i}` : 'main',
        hash: retry ? chain[chain.length - 1].hash : h,
        parentHash: retry ? lastParentHash : (parent?.hash ?? null),
        duration: rand() < 0.8 ? Math.floor(rand() * 5000) : null,
        body:
          i === 0
            ? firstRequest(`Start ${c}`, system)
            : {
                model: 'm',
                system,
                messages: Array.from({ length: 2 * i + 1 }, (_, k) => ({ role: k % 2 ? 'assistant' : 'user', content: `m${k}` })),
              },
        response: malformed ? { content: 'not an array' } : taskCount ? taskResponse(calls) : textResponse(),
        tti: legacy
          ? calls.map((k, n) => ({
              id: k.id,
              name: 'Task',
              prompt: k.prompt,
              description: '',
              ...(n === 0 && rand() < 0.5 ? { linked_conversation_id: conv(9000 + c) } : {}),
            }))
          : null,
      })
      if (!retry) lastParentHash = parent?.hash ?? null
      chain.push({ hash: retry ? chain[chain.length - 1].hash : h, ts })
      // Sub-task conversations for (most of) the calls.
      calls.forEach((call) => {
        if (rand() < 0.15) return
        const sub = conv(++convs)
        const late = rand() < 0.1 ? 120_000 : 0
        const subStart = ts + 500 + Math.floor(rand() * 20_000) + late
        const subLength = 1 + Math.floor(rand() * 3)
        let prev: string | null = null
        for (let s = 0; s < subLength; s++) {
          const sh = hash(++hashes)
          const content =
            s === 0
              ? rand() < 0.5
                ? call.prompt
                : [
                    { type: 'text', text: call.prompt },
                    { type: 'text', text: '<system-reminder>r</system-reminder>' },
                  ]
              : null
          rows.push({
            id: uuid(),
            ts: at(subStart + s * 5_000),
            train,
            conversation: sub,
            hash: sh,
            parentHash: prev,
            duration: 800,
            body:
              s === 0
                ? firstRequest(content, system)
                : {
                    model: 'm',
                    system,
                    messages: [
                      { role: 'user', content: call.prompt },
                      { role: 'assistant', content: 'x' },
                      { role: 'user', content: 'y' },
                    ],
                  },
            response: textResponse(),
          })
          prev = sh
        }
      })
    }
  }
  // Rows without a conversation, and one with no messages at all.
  for (let i = 0; i < 20; i++)
    rows.push({ id: uuid(), ts: at(i * 1000), train: 'train-9', body: firstRequest(`loose ${i}`, pick(SYSTEMS)) })
  rows.push({ id: uuid(), ts: at(5), conversation: conv(++convs), body: { model: 'm', system: 'S' } })
  return rows
}
