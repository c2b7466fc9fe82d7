/**
 * parent_request_id: the documented choice among several candidates — the greatest timestamp
 * at or before the child's, then the greatest request_id — and what never qualifies.
 */
import { describe, expect, it } from 'vitest'
import { parentRequestIds } from '../../hooks/backfills/parent-request-ids.js'
import { freshDatabase, inDb } from './support/template-databases.js'
import { conv, hash, insertRows, owned, req, runQuiet } from './support/fixtures.js'

const T = (hms: string) => `2025-06-07T${hms}Z`

describe('parent-request-ids', () => {
  it('picks the latest candidate at or before the child, then the greatest request_id', async () => {
    const url = await freshDatabase('parents')
    const C = conv(1)
    await inDb(url, (c) =>
      insertRows(c, [
        // Same hash at the same instant, twice: the greater request_id wins.
        { id: req(0x10), ts: T('10:00:00'), conversation: C, hash: hash(1) },
        { id: req(0x11), ts: T('10:00:00'), conversation: C, hash: hash(1) },
        { id: req(0x0f), ts: T('09:59:00'), conversation: C, hash: hash(1) },
        { id: req(0x20), ts: T('10:01:00'), conversation: C, hash: hash(2), parentHash: hash(1) },
        // A candidate at exactly the child's time qualifies; a later one never does.
        { id: req(0x30), ts: T('11:00:00'), conversation: C, hash: hash(3) },
        { id: req(0x31), ts: T('11:00:00'), conversation: C, hash: hash(4), parentHash: hash(3) },
        { id: req(0x40), ts: T('12:00:10'), conversation: C, hash: hash(5) },
        { id: req(0x41), ts: T('12:00:00'), conversation: C, hash: hash(6), parentHash: hash(5) },
        // Other train, other conversation, no conversation: not candidates.
        { id: req(0x50), ts: T('13:00:00'), conversation: C, train: 'train-b', hash: hash(7) },
        { id: req(0x51), ts: T('13:00:00'), conversation: conv(2), hash: hash(7) },
        { id: req(0x52), ts: T('13:01:00'), conversation: C, hash: hash(8), parentHash: hash(7) },
        { id: req(0x53), ts: T('13:02:00'), conversation: null, hash: hash(9), parentHash: hash(7) },
        // A row whose current hash equals its own parent hash does not point at itself.
        { id: req(0x60), ts: T('14:00:00'), conversation: C, hash: hash(10), parentHash: hash(10) },
        // Already set: kept even though a "better" candidate exists.
        { id: req(0x70), ts: T('15:00:00'), conversation: C, hash: hash(11), parentHash: hash(1), parentRequest: req(0x0f) },
      ]),
    )
    const result = await runQuiet(url, { backfills: [parentRequestIds], env: { HOOKS_BATCH_SIZE: '3' } })
    expect(result.ok).toBe(true)
    const rows = await inDb(url, owned)
    const parent = (n: number) => rows.get(req(n))!.parent_request_id
    expect(parent(0x20)).toBe(req(0x11))
    expect(parent(0x31)).toBe(req(0x30))
    expect(parent(0x41)).toBeNull()
    expect(parent(0x52)).toBeNull()
    expect(parent(0x53)).toBeNull()
    expect(parent(0x60)).toBeNull()
    expect(parent(0x70)).toBe(req(0x0f))
    for (const n of [0x0f, 0x10, 0x11, 0x30, 0x40, 0x50, 0x51]) expect(parent(n)).toBeNull()
    // Set: 0x20, 0x31. Unresolved (skipped): 0x41, 0x52, 0x60.
    expect(result.summaries[0]).toMatchObject({ changed: 2, skipped: 3 })
  })
})
