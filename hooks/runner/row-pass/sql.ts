/**
 * The row pass's SQL, built from the participating rules (hooks/runner/row-rule.ts): one read
 * that evaluates every rule on the same rows, and one UPDATE that writes all their columns.
 * Column names of the reading are prefixed per rule (`r0_…`, `r1_…`), so rules never collide.
 */
import { preExisting } from '../high-water.js'
import type { RowRule } from '../row-rule.js'
import { XID_TABLE } from './state.js'

export interface Participant {
  /** The backfill's name (its ledger key). */
  name: string
  rule: RowRule
  /** The backfill's prepared input (JSON), bound where its SQL says `:input`. */
  input: unknown
}

/** A statement and the values of its parameters after the fixed ones. */
export interface Template {
  sql: string
  /** Extra parameters (the rules' inputs), numbered after the statement's fixed ones. */
  params: unknown[]
}

const prefix = (i: number) => `r${i}_`

/** The backfills taking part, once each (a backfill may bring several rules). */
export const participantNames = (participants: Participant[]): string[] => [...new Set(participants.map((p) => p.name))]

/** Replace `:input` in each rule's SQL by a jsonb parameter, numbered from `first`. */
function bindInputs(participants: Participant[], first: number): { fragment: (i: number, sql: string) => string; params: unknown[] } {
  const params: unknown[] = []
  // Per participant: the number of its input parameter, or 0 when its SQL uses none.
  const numbers = participants.map((p) => {
    const uses = [p.rule.pending, ...Object.values(p.rule.read)].some((s) => s.includes(':input'))
    if (!uses) return 0
    params.push(JSON.stringify(p.input ?? null))
    return first + params.length - 1
  })
  return { fragment: (i, sql) => (numbers[i] ? sql.replaceAll(':input', `$${numbers[i]}::jsonb`) : sql), params }
}

/** The select list: per rule, whether the row is pending, and its read expressions only if so. */
function readList(participants: Participant[], fragment: (i: number, sql: string) => string): string {
  const items = ['a.ctid::text as tid', 'a.request_id::text as id']
  participants.forEach((p, i) => {
    const pending = `(${fragment(i, p.rule.pending)})`
    items.push(`coalesce(${pending}, false) as ${prefix(i)}pending`)
    for (const [name, expr] of Object.entries(p.rule.read))
      items.push(`case when ${pending} then ${fragment(i, expr)} end as ${prefix(i)}${name}`)
    if (p.rule.guard === 'unchanged') items.push(`case when ${pending} then a.${p.rule.column} end as ${prefix(i)}old`)
  })
  return items.join(',\n    ')
}

/** The row's current version was not written by the pass itself (state.ts, XID_TABLE). */
const notOwnWrite = `not exists (select 1 from ${XID_TABLE} w where xid(w.xid) = a.xmin)`

function anyPending(participants: Participant[], fragment: (i: number, sql: string) => string): string {
  return participants.map((p, i) => `coalesce((${fragment(i, p.rule.pending)}), false)`).join(' or ')
}

/**
 * The rows of pages [$1, $2) that any rule needs, under `condition` too; inputs from
 * `firstInput`. `ownWrite` leaves out the rows whose current version the pass wrote itself.
 */
function pageRead(participants: Participant[], firstInput: number, condition: string, ownWrite = notOwnWrite): Template {
  const { fragment, params } = bindInputs(participants, firstInput)
  return {
    sql: `select ${readList(participants, fragment)}
  from public.api_requests a
  where a.ctid >= format('(%s,0)', $1::bigint)::tid and a.ctid < format('(%s,0)', $2::bigint)::tid${condition}
    and ${preExisting('a')} and ${ownWrite} and (${anyPending(participants, fragment)})`,
    params,
  }
}

/**
 * The walk's read of pages [$1, $2) — a TID range scan, so the heap is read in physical order
 * whatever its size — leaving out rows the application inserted after the backfill started
 * (high-water.ts).
 */
export const walkRead = (participants: Participant[]): Template => pageRead(participants, 3, '')

/**
 * The final pass, pages [$1, $2): rows still pending whose current version may have been
 * written after the walk began — by a transaction at or after the start snapshot's xmin ($3),
 * the oldest one running then — and not by the pass itself: only such a row can have moved
 * behind the walk. Cheap columns only, unless a row matches.
 *
 * Why the xmin and not "invisible to the snapshot" (at or after its xmax, or in its list of
 * running transactions): a row written in a savepoint carries its subtransaction's id, which
 * that list leaves out and which PostgreSQL releases from pg_locks at RELEASE SAVEPOINT, so a
 * savepoint of a transaction open at the start would look committed before it. The price:
 * while a transaction older than the walk was open (a report, a pg_dump), every still-pending
 * row written since it began is read again. `age() >= 0` leaves out frozen rows whose raw
 * xmin is more than 2^31 transactions old.
 */
export const catchUpRead = (participants: Participant[]): Template =>
  pageRead(
    participants,
    5,
    `
    and age(a.xmin) >= 0 and age(a.xmin) <= age(xid(pg_snapshot_xmin($3::pg_snapshot)))`,
    // By then most rows' current version is the pass's own: the list of its transaction ids
    // ($4, read once at the start of the final pass) is a constant the planner hashes, so each
    // row costs one lookup before any rule's test. (As a NOT EXISTS over the table, an
    // underestimated join could rescan the table of ids for every row: at 1M rows the final
    // pass took 100 times as long as at 100k.)
    'a.xmin <> all($4::xid[])',
  )

/** The guard of a rule, on the row `a` and the batch record `v`. */
function guard(p: Participant, i: number): string {
  const col = `a.${p.rule.column}`
  return p.rule.guard === 'still-null' ? `${col} is null` : `${col} is not distinct from v.${prefix(i)}old`
}

/** The record field of an `also` column of participant `i`. */
export const alsoField = (i: number, column: string) => `${prefix(i)}also_${column}`

/**
 * Per column, the participants that write it, in order. A column may be shared by several
 * rules (they compose, row-rule.ts); an `also` column belongs to one rule and nobody else.
 */
export function columnWriters(participants: Participant[]): { shared: Map<string, number[]>; also: Map<string, number> } {
  const shared = new Map<string, number[]>()
  const also = new Map<string, number>()
  for (const [i, p] of participants.entries()) shared.set(p.rule.column, [...(shared.get(p.rule.column) ?? []), i])
  participants.forEach((p, i) => {
    for (const column of Object.keys(p.rule.also ?? {})) {
      if (shared.has(column) || also.has(column))
        throw new Error(`row pass: ${p.name} sets ${column} with ${p.rule.column}, but another rule writes ${column} too`)
      also.set(column, i)
    }
  })
  return { shared, also }
}

/**
 * One UPDATE for the whole batch: every row once, every rule's column set where that rule has a
 * value for the row and its guard still holds. `byTid`: rows are found by their ctid (the walk;
 * a row the application moved since the read is not found, and is left to the final pass), else
 * by request_id. Returns, per row, which rules' values it now holds.
 */
export function batchWrite(participants: Participant[], byTid: boolean): string {
  const fields = ['tid tid', 'id uuid']
  const wanted: string[] = []
  const returning: string[] = []
  const applies = (i: number) => `coalesce(v.${prefix(i)}set, false) and ${guard(participants[i], i)}`
  participants.forEach((p, i) => {
    const r = prefix(i)
    fields.push(`${r}set boolean`, `${r}value ${p.rule.type}`)
    if (p.rule.guard === 'unchanged') fields.push(`${r}old ${p.rule.type}`)
    for (const [column, type] of Object.entries(p.rule.also ?? {})) fields.push(`${alsoField(i, column)} ${type}`)
    wanted.push(`(${applies(i)})`)
    returning.push(`coalesce(v.${r}set, false) and a.${p.rule.column} is not distinct from v.${r}value as ${r}written`)
  })
  const { shared, also } = columnWriters(participants)
  const sets: string[] = []
  // Rules sharing a column carry the same (last) value for a row they all change (compute.ts).
  for (const [column, writers] of shared) {
    const cases = [...writers].reverse().map((i) => `when ${applies(i)} then v.${prefix(i)}value`)
    sets.push(`${column} = case ${cases.join(' ')} else a.${column} end`)
  }
  for (const [column, i] of also) sets.push(`${column} = case when ${applies(i)} then v.${alsoField(i, column)} else a.${column} end`)
  const match = byTid ? 'a.ctid = v.tid and a.request_id = v.id' : 'a.request_id = v.id'
  return `update public.api_requests a set ${sets.join(',\n    ')}
  from jsonb_to_recordset($1::jsonb) as v(${fields.join(', ')})
  where ${match} and ${preExisting('a')} and (${wanted.join(' or ')})
  returning ${returning.join(', ')}`
}

export { prefix as rulePrefix }
