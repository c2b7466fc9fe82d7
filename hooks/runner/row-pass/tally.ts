/**
 * What the row pass did, shared by the workers of one process: per participant, rows written
 * and skipped (for the summaries), and the ledger update each batch commits with its writes.
 */
import type pg from 'pg'
import type { Cursor } from '../backfill.js'
import { saveProgress } from '../ledger.js'
import type { RuleCounts } from './compute.js'
import type { Participant } from './sql.js'

export interface BatchCounts {
  /** Per participant (same order): rows now holding its value. */
  written: number[]
  /** Rows the UPDATE changed (any column). */
  rows: number
}

export class Tally {
  readonly changed: number[]
  readonly skipped: number[]

  constructor(readonly participants: Participant[]) {
    this.changed = participants.map(() => 0)
    this.skipped = participants.map(() => 0)
  }

  add(counts: BatchCounts, found: RuleCounts[]): void {
    for (const [i, n] of counts.written.entries()) this.changed[i] += n
    for (const [i, c] of found.entries()) this.skipped[i] += c.skipped
  }
}

/** A backfill's rows written and skipped, its rules' counts added up. */
export function tallyOf(tally: Tally, name: string): { changed: number; skipped: number } {
  let changed = 0
  let skipped = 0
  tally.participants.forEach((p, i) => {
    if (p.name !== name) return
    changed += tally.changed[i]
    skipped += tally.skipped[i]
  })
  return { changed, skipped }
}

/**
 * Inside a batch transaction: each participant's ledger row gets the batch's counts, position
 * and heartbeat — once per backfill, whose rules' counts add up. In name order, so that
 * workers committing at once never deadlock on them.
 */
export async function saveBatchProgress(
  client: pg.ClientBase,
  participants: Participant[],
  step: string,
  cursor: Cursor,
  counts: BatchCounts,
  found: RuleCounts[],
  examined: number,
): Promise<void> {
  const byName = new Map<string, { changed: number; skipped: number }>()
  participants.forEach((p, i) => {
    const sum = byName.get(p.name) ?? { changed: 0, skipped: 0 }
    byName.set(p.name, { changed: sum.changed + counts.written[i], skipped: sum.skipped + found[i].skipped })
  })
  for (const name of [...byName.keys()].sort((a, b) => a.localeCompare(b))) {
    const { changed, skipped } = byName.get(name)!
    await saveProgress(client, name, { step, cursor, changed, skipped, examined })
  }
}
