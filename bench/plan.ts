/**
 * The shape of the generated data, decided in JavaScript (seeded, so every run with the same
 * N produces the same database) and kept small: one entry per row, a few numbers each, held in
 * typed arrays. generate.ts ships the plan to the server and builds the large JSON bodies
 * there, in SQL, from it.
 *
 * What the plan models (Claude Code traffic through the proxy):
 *  - main conversations of 3–15 requests, in one of six trains; request k carries the whole
 *    history (2k+1 messages), so bodies grow from ~5 KB to 50 KB along a conversation;
 *    consecutive requests chain by message hash (parent_message_hash = previous
 *    current_message_hash), and ~2% of requests are retries that repeat a hash;
 *  - ~12% of responses call the Task tool 1–3 times; each call starts a sub-task
 *    conversation of 1–4 requests whose first request has a single user message equal to the
 *    call's prompt (as a string, a text block, or a text block plus a <system-reminder>),
 *    starting a few seconds after the parent's response ended (5%: 1–2 minutes later,
 *    outside the linking window);
 *  - system prompts in several forms (see SystemKind) so that every branch of the
 *    system-hash rules is exercised;
 *  - ~1% of requests have no response (errors).
 * Rows are numbered by timestamp, so the physical order is insertion (time) order, as in
 * production, while request ids are random (uuid v4-like): key walks visit the heap randomly.
 */
import { seededRandom } from '../lib/seeded-random.js'

/** How `body.system` is built for a row (see generate.ts, systemSql). */
export enum SystemKind {
  /** Claude Code: two blocks, "You are Claude Code…" then guidelines, <env>, gitStatus. */
  ClaudeCodeBlocks = 0,
  /** Block array whose text starts with the CLI-tool phrase (stable text = the phrase). */
  CliPhraseBlocks = 1,
  /** Custom agent prompt as a string, with a <system-reminder>, <env> and gitStatus. */
  AgentString = 2,
  /** A string starting (after whitespace) with the CLI-tool phrase. */
  CliPhraseString = 3,
  /** No `system` key at all (not pending for the backfill). */
  Absent = 4,
  /** The empty string (pending, hashes to NULL: skipped). */
  Empty = 5,
  /** CRLF line endings and an extra block without text. */
  CrlfBlocks = 6,
  /** Sub-agent system prompt (a string) on sub-task requests. */
  SubAgent = 7,
}

export const CORPUS_CHARS = 262_144
/** Offsets into the corpus stay below this, so every slice is full length. */
export const CORPUS_SPAN = 200_000

/** Length of guideline text variant `v` (must match generate.ts: guidelinesSql). */
export const guidelinesLength = (v: number) => 3000 + ((v * 1013) % 5000)

export interface Plan {
  rows: number
  conversations: number
  subtaskConversations: number
  taskCalls: number
  /** Columns, indexed by row number - 1 (rows are numbered 1..N by timestamp). */
  conv: Int32Array
  pos: Int32Array
  sub: Uint8Array
  tsMs: Float64Array
  dur: Int32Array
  train: Uint8Array
  sys: Uint8Array
  variant: Uint8Array
  model: Uint8Array
  msgs: Int32Array
  msgLen: Int32Array
  tasks: Uint8Array
  otherTool: Uint8Array
  /** Row number of the parent (sub-task rows), else 0. */
  parentN: Int32Array
  parentJ: Uint8Array
  style: Uint8Array
  hasResponse: Uint8Array
}

function pickWeighted(r: number, weights: number[]): number {
  let acc = 0
  const total = weights.reduce((a, b) => a + b, 0)
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i] / total
    if (r < acc) return i
  }
  return weights.length - 1
}

const DAY = 86_400_000

export function buildPlan(rows: number, seed = 20240601, now = Date.UTC(2025, 5, 1)): Plan {
  const random = seededRandom(seed)
  const cols = {
    conv: new Int32Array(rows),
    pos: new Int32Array(rows),
    sub: new Uint8Array(rows),
    tsMs: new Float64Array(rows),
    dur: new Int32Array(rows),
    train: new Uint8Array(rows),
    sys: new Uint8Array(rows),
    variant: new Uint8Array(rows),
    model: new Uint8Array(rows),
    msgs: new Int32Array(rows),
    msgLen: new Int32Array(rows),
    tasks: new Uint8Array(rows),
    otherTool: new Uint8Array(rows),
    parentN: new Int32Array(rows),
    parentJ: new Uint8Array(rows),
    style: new Uint8Array(rows),
    hasResponse: new Uint8Array(rows),
  }
  let count = 0
  let nextConv = 0
  let conversations = 0
  let subtaskConversations = 0
  let taskCalls = 0
  // Pre-sort parent references (emission index); remapped to row numbers after sorting.
  const parentIdx = new Int32Array(rows).fill(-1)

  const sysLength = (kind: number, v: number) => (kind === SystemKind.Absent || kind === SystemKind.Empty ? 0 : guidelinesLength(v) + 900)
  /** Per-message text length giving a body of about `target` bytes with `msgs` messages. */
  const messageLength = (target: number, sys: number, msgs: number) =>
    Math.max(120, Math.floor((target - sys - 400) / (msgs * 0.68 + 0.32)))

  const emit = (fields: {
    conv: number
    pos: number
    sub: boolean
    ts: number
    dur: number
    train: number
    sys: number
    variant: number
    model: number
    msgs: number
    target: number
    tasks: number
    otherTool: boolean
    parent: number
    parentJ: number
    style: number
  }): number => {
    const i = count++
    cols.conv[i] = fields.conv
    cols.pos[i] = fields.pos
    cols.sub[i] = fields.sub ? 1 : 0
    cols.tsMs[i] = fields.ts
    cols.dur[i] = fields.dur
    cols.train[i] = fields.train
    cols.sys[i] = fields.sys
    cols.variant[i] = fields.variant
    cols.model[i] = fields.model
    cols.msgs[i] = fields.msgs
    cols.msgLen[i] = messageLength(fields.target, sysLength(fields.sys, fields.variant), fields.msgs)
    cols.tasks[i] = fields.tasks
    cols.otherTool[i] = fields.otherTool ? 1 : 0
    parentIdx[i] = fields.parent
    cols.parentJ[i] = fields.parentJ
    cols.style[i] = fields.style
    cols.hasResponse[i] = random() < 0.01 ? 0 : 1
    return i
  }

  while (count < rows) {
    const conv = nextConv++
    conversations++
    const length = 3 + Math.floor(random() * 13)
    const train = pickWeighted(random(), [30, 25, 20, 12, 8, 5])
    const sys = pickWeighted(random(), [38, 20, 22, 10, 3, 1, 6])
    const variant = Math.floor(random() * 12)
    const model = pickWeighted(random(), [70, 20, 10])
    const baseSize = 5000 + random() * 3000
    let t = now - 31 * DAY + random() * 30 * DAY
    for (let pos = 0; pos < length && count < rows; pos++) {
      const dur = 2000 + Math.floor(random() * 38_000)
      const tasks = random() < 0.12 ? 1 + pickWeighted(random(), [60, 30, 10]) : 0
      const target = Math.min(50_000, Math.max(baseSize, sysLength(sys, variant) + 1200) + pos * 4400 * (0.8 + random() * 0.4))
      const parent = emit({
        conv,
        pos,
        sub: false,
        ts: t,
        dur,
        train,
        sys,
        variant,
        model,
        msgs: 2 * pos + 1,
        target,
        tasks,
        otherTool: random() < 0.4,
        parent: -1,
        parentJ: 0,
        style: 0,
      })
      taskCalls += tasks
      let busyUntil = t + dur
      // A retry: the same messages again (same hash), a few seconds later.
      if (random() < 0.02 && count < rows) {
        emit({
          conv,
          pos,
          sub: false,
          ts: t + dur + 3000,
          dur,
          train,
          sys,
          variant,
          model,
          msgs: 2 * pos + 1,
          target,
          tasks: 0,
          otherTool: false,
          parent: -1,
          parentJ: 0,
          style: 0,
        })
        busyUntil += 3000 + dur
      }
      for (let j = 1; j <= tasks && count < rows; j++) {
        const subConv = nextConv++
        subtaskConversations++
        const subLength = 1 + Math.floor(random() * 4)
        const style = pickWeighted(random(), [50, 30, 20])
        const late = random() < 0.05
        let st = t + dur + (late ? 61_000 + random() * 60_000 : 500 + random() * 7500) + j * 150
        for (let q = 0; q < subLength && count < rows; q++) {
          const d2 = 1500 + Math.floor(random() * 20_000)
          emit({
            conv: subConv,
            pos: q,
            sub: true,
            ts: st,
            dur: d2,
            train,
            sys: SystemKind.SubAgent,
            variant: (variant + j) % 12,
            model,
            msgs: 2 * q + 1,
            target: sysLength(SystemKind.SubAgent, (variant + j) % 12) + 1500 + q * 3000,
            tasks: 0,
            otherTool: random() < 0.7,
            parent,
            parentJ: j,
            style,
          })
          st += d2 + 1000 + random() * 5000
        }
        busyUntil = Math.max(busyUntil, st)
      }
      t = busyUntil + 5000 + random() * 115_000
    }
  }

  // Number rows by timestamp (ties by emission order): row n = rank + 1.
  const order = new Int32Array(rows)
  for (let i = 0; i < rows; i++) order[i] = i
  order.sort((a, b) => cols.tsMs[a] - cols.tsMs[b] || a - b)
  const rank = new Int32Array(rows)
  for (let r = 0; r < rows; r++) rank[order[r]] = r
  const permute = <T extends Int32Array | Uint8Array | Float64Array>(src: T): T => {
    const out = new (src.constructor as new (n: number) => T)(rows)
    for (let r = 0; r < rows; r++) out[r] = src[order[r]]
    return out
  }
  const parentN = new Int32Array(rows)
  for (let r = 0; r < rows; r++) {
    const p = parentIdx[order[r]]
    parentN[r] = p < 0 ? 0 : rank[p] + 1
  }
  return {
    rows,
    conversations,
    subtaskConversations,
    taskCalls,
    conv: permute(cols.conv),
    pos: permute(cols.pos),
    sub: permute(cols.sub),
    tsMs: permute(cols.tsMs),
    dur: permute(cols.dur),
    train: permute(cols.train),
    sys: permute(cols.sys),
    variant: permute(cols.variant),
    model: permute(cols.model),
    msgs: permute(cols.msgs),
    msgLen: permute(cols.msgLen),
    tasks: permute(cols.tasks),
    otherTool: permute(cols.otherTool),
    parentN,
    parentJ: permute(cols.parentJ),
    style: permute(cols.style),
    hasResponse: permute(cols.hasResponse),
  }
}

/** Pseudo-English text with code-ish tokens: the material every message and prompt is cut from. */
export function buildCorpus(seed = 7): string {
  const random = seededRandom(seed)
  const words = (
    'the a an of to in for on with from by as is are was be this that it its we you they should could would will can must ' +
    'function method class module component service handler request response query database table column index migration ' +
    'schema transaction batch cursor ledger backfill hash prompt system message conversation branch parent child task agent ' +
    'tool result error retry timeout lock update insert select delete commit rollback deploy release build test suite ' +
    'assert expect mock fixture config setting environment variable file path directory repository commit diff patch ' +
    'review comment issue bug fix feature refactor rename extract inline split merge rebase cherry pick stash push pull ' +
    'async await promise callback stream buffer parse serialize encode decode validate normalise trim join map filter ' +
    'reduce sort group count sum average latency throughput memory cache queue worker thread process signal exit code ' +
    'user account train key token usage model stream chunk event dashboard chart report summary detail list item value ' +
    'because however therefore instead although unless until while before after during between within without across ' +
    'carefully quickly exactly only also never always often sometimes usually first then finally next last other same'
  ).split(/\s+/)
  const idents = [
    'parseRequest',
    'runBatch',
    'keyWalkStep',
    'computeSystemHash',
    'api_requests',
    'conversation_id',
    'src/index.ts',
    'hooks/run.ts',
    'package.json',
    'README.md',
    'tsconfig.json',
    'npm test',
    'git status',
    'SELECT 1',
    'null',
    'undefined',
    '42',
    '200',
    '404',
  ]
  const parts: string[] = []
  let length = 0
  while (length < CORPUS_CHARS) {
    let sentence = ''
    const n = 6 + Math.floor(random() * 18)
    for (let i = 0; i < n; i++) {
      const w = random() < 0.08 ? '`' + idents[Math.floor(random() * idents.length)] + '`' : words[Math.floor(random() * words.length)]
      sentence += (i ? ' ' : '') + w
    }
    sentence = sentence[0].toUpperCase() + sentence.slice(1) + (random() < 0.1 ? ':' : '.')
    const r = random()
    const sep = r < 0.12 ? '\n\n' : r < 0.2 ? '\n- ' : r < 0.23 ? '\n```ts\nconst value = await client.query(sql, params)\n```\n' : ' '
    parts.push(sentence + sep)
    length += sentence.length + sep.length
  }
  return parts.join('').slice(0, CORPUS_CHARS)
}
