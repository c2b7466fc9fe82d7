/**
 * From the rows one read returned to the records of one UPDATE: every pending rule computes its
 * value for the row, and a row that gets at least one value becomes one record.
 */
import type { Participant } from './sql.js'
import { alsoField, rulePrefix } from './sql.js'

/** What a batch found, per participant (same order). */
export interface RuleCounts {
  /** Rows the rule had a value for (written if the guard still holds). */
  planned: number
  /** Rows found malformed or unresolvable, left alone. */
  skipped: number
}

export interface ComputedBatch {
  records: Record<string, unknown>[]
  counts: RuleCounts[]
}

export function computeBatch(participants: Participant[], rows: Record<string, unknown>[]): ComputedBatch {
  const counts = participants.map(() => ({ planned: 0, skipped: 0 }))
  const records: Record<string, unknown>[] = []
  for (const row of rows) {
    const record: Record<string, unknown> = { tid: row.tid, id: row.id }
    // Per column this row gets a value for: the value so far, and the participants that set it.
    const composed = new Map<string, { value: unknown; setters: number[] }>()
    participants.forEach((p, i) => {
      const r = rulePrefix(i)
      if (row[`${r}pending`] !== true) return
      const earlier = composed.get(p.rule.column)
      // An earlier rule filled the column this rule only fills while NULL: nothing left to do.
      if (earlier && p.rule.guard === 'still-null') return
      const reading: Record<string, unknown> = {}
      for (const name of Object.keys(p.rule.read)) reading[name] = row[`${r}${name}`]
      // A rule that shares its column builds on the earlier rule's value (row-rule.ts).
      if (p.rule.guard === 'unchanged') reading.old = earlier ? earlier.value : row[`${r}old`]
      const outcome = p.rule.compute(reading, p.input)
      if (outcome === 'skip') {
        counts[i].skipped++
        return
      }
      if (outcome === null) return
      record[`${r}set`] = true
      record[`${r}value`] = outcome.value
      // The guard compares with the value read, whichever rule computed from what.
      if (p.rule.guard === 'unchanged') record[`${r}old`] = row[`${r}old`]
      for (const column of Object.keys(p.rule.also ?? {})) record[alsoField(i, column)] = outcome.also?.[column] ?? null
      if (earlier) {
        for (const j of earlier.setters) record[`${rulePrefix(j)}value`] = outcome.value
        earlier.value = outcome.value
        earlier.setters.push(i)
      } else composed.set(p.rule.column, { value: outcome.value, setters: [i] })
      counts[i].planned++
    })
    if (composed.size > 0) records.push(record)
  }
  return { records, counts }
}
