/**
 * The application's write path, as a separate process, at a fixed rate:
 *
 *   tsx bench/writer-child.ts --rate 50      (target: BENCH_DB_URL; stop: write "stop" to stdin)
 *
 * Every 1/rate seconds a new request is stored the way the proxy stores it
 * (docs/legacy-schema.md section 3): an INSERT of the request row with
 * `on conflict (request_id) do nothing`, then — once that returns — the UPDATE by request_id
 * that records its response. Latency is measured per statement from the moment it was due
 * (so a writer that falls behind is charged for the wait: no coordinated omission), on a small
 * pool, like the application's. On "stop" it finishes what is in flight and prints one JSON line.
 */
import { randomUUID, createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import pg from 'pg'
import { computeSystemHash } from '../hooks/rules/system-prompt-hash.js'
import { buildCorpus } from './plan.js'

const corpus = buildCorpus(11)
const slice = (at: number, length: number) => corpus.slice(at % (corpus.length - length), (at % (corpus.length - length)) + length)

const INSERT = `insert into api_requests (
    request_id, train_id, account_id, "timestamp", method, path, headers, body, api_key_hash, model, request_type,
    current_message_hash, parent_message_hash, conversation_id, branch_id, system_hash, message_count,
    parent_task_request_id, is_subtask, task_tool_invocation, parent_request_id)
  values ($1, $2, $3, now(), 'POST', '/v1/messages', $4, $5, $6, $7, 'inference', $8, $9, $10, 'main', $11, $12, null, false, null, null)
  on conflict (request_id) do nothing`

const UPDATE = `update api_requests set response_status = 200, response_headers = $2, response_body = $3, response_streaming = true,
    input_tokens = $4, output_tokens = $5, total_tokens = $4::int + $5::int, first_token_ms = 420, duration_ms = 3100, error = null,
    tool_call_count = 1, cache_creation_input_tokens = 0, cache_read_input_tokens = 12000, usage_data = $6
  where request_id = $1`

/** One request of a Claude Code session: ~10–20 KB body, system prompt as blocks. */
function request(k: number) {
  const system = [
    { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
    { type: 'text', text: slice(k * 7919, 4000) + '\n\ngitStatus: This is the git status.\nCurrent branch: main\n\nStatus:\nM src/a.ts\n' },
  ]
  const messages = Array.from({ length: 1 + 2 * (k % 6) }, (_, i) =>
    i % 2 === 0
      ? { role: 'user', content: slice(k * 31 + i * 977, 1500) }
      : { role: 'assistant', content: [{ type: 'text', text: slice(k * 17 + i, 400) }] },
  )
  const body = { model: 'claude-sonnet-4-20250514', max_tokens: 32000, stream: true, system, messages }
  const hash = (s: string) => createHash('sha256').update(s).digest('hex')
  return {
    id: randomUUID(),
    body,
    systemHash: computeSystemHash(system),
    current: hash(`writer:${k}`),
    parent: k % 6 === 0 ? null : hash(`writer:${k - 1}`),
    conversation: randomUUID(),
    messageCount: messages.length,
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0
}

async function main() {
  const url = process.env.BENCH_DB_URL
  if (!url) throw new Error('BENCH_DB_URL is not set')
  const rateArg = process.argv.indexOf('--rate')
  const rate = rateArg > 0 ? Number(process.argv[rateArg + 1]) : 50
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'bench writer' })
  pool.on('error', () => {})
  // Open the pool's connections before the clock starts.
  await Promise.all(Array.from({ length: 4 }, async () => (await pool.connect()).release()))

  const inserts: number[] = []
  const updates: number[] = []
  let errors = 0
  const inFlight = new Set<Promise<void>>()
  let stopping = false
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stop') stopping = true
  })

  const one = async (k: number, due: number) => {
    const r = request(k)
    try {
      await pool.query(INSERT, [
        r.id,
        `train-${k % 3}`,
        null,
        { 'content-type': 'application/json' },
        r.body,
        'keyhash',
        'claude-sonnet-4-20250514',
        r.current,
        r.parent,
        r.conversation,
        r.systemHash,
        r.messageCount,
      ])
      inserts.push(performance.now() - due)
      const updateDue = performance.now()
      const response = {
        id: `msg_${k}`,
        type: 'message',
        role: 'assistant',
        content: [{ type: 'text', text: slice(k * 13, 1500) }],
        usage: { input_tokens: 12, output_tokens: 340 },
      }
      await pool.query(UPDATE, [r.id, { 'content-type': 'text/event-stream' }, response, 12, 340, response.usage])
      updates.push(performance.now() - updateDue)
    } catch (error) {
      if (errors++ === 0) process.stderr.write(`writer: first error: ${(error as Error).message}\n`)
    }
  }

  const started = performance.now()
  const interval = 1000 / rate
  for (let k = 0; !stopping; k++) {
    const due = started + k * interval
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const p = one(k, due).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }
  await Promise.all(inFlight)
  const seconds = (performance.now() - started) / 1000
  await pool.end()
  const all = [...inserts, ...updates].sort((a, b) => a - b)
  inserts.sort((a, b) => a - b)
  updates.sort((a, b) => a - b)
  process.stdout.write(
    JSON.stringify({
      seconds,
      requests: inserts.length,
      errors,
      p50Ms: percentile(all, 0.5),
      p99Ms: percentile(all, 0.99),
      maxMs: all.at(-1) ?? 0,
      insertP99Ms: percentile(inserts, 0.99),
      updateP99Ms: percentile(updates, 0.99),
    }) + '\n',
  )
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(String(error?.stack ?? error) + '\n')
    process.exit(1)
  },
)
