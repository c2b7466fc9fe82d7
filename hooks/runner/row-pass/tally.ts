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

/**
 * Inside a batch transaction: each participant's ledger row gets the batch's counts, position
 * and heartbeat. In name order, so that workers committing at once never deadlock on them.
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
  const order = participants.map((p, i) => ({ name: p.name, i })).sort((a, b) => a.name.localeCompare(b.name))
  for (const { name, i } of order) {
    await saveProgress(client, name, { step, cursor, changed: counts.written[i], skipped: found[i].skipped, examined })
  }
}
