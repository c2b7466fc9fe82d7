/**
 * From the rows one read returned to the records of one UPDATE: every pending rule computes its
 * value for the row, and a row that gets at least one value becomes one record.
 */
import type { Participant } from './sql.js'
import { rulePrefix } from './sql.js'

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
    let any = false
    participants.forEach((p, i) => {
      const r = rulePrefix(i)
      if (row[`${r}pending`] !== true) return
      const reading: Record<string, unknown> = {}
      for (const name of Object.keys(p.rule.read)) reading[name] = row[`${r}${name}`]
      if (p.rule.guard === 'unchanged') reading.old = row[`${r}old`]
      const outcome = p.rule.compute(reading, p.input)
      if (outcome === 'skip') {
        counts[i].skipped++
        return
      }
      if (outcome === null) return
      record[`${r}set`] = true
      record[`${r}value`] = outcome.value
      if (p.rule.guard === 'unchanged') record[`${r}old`] = reading.old
      counts[i].planned++
      any = true
    })
    if (any) records.push(record)
  }
  return { records, counts }
}
