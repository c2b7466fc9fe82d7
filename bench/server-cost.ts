/**
 * Measuring what a phase costs the server (WAL, api_requests' heap) on a settled database, so
 * that one phase's leftovers are not charged to the next: every table vacuumed and analyzed,
 * a checkpoint (so each phase pays the same full-page images: the first change of each page
 * after a checkpoint logs the whole page), the OS's dirty pages written back, and no
 * autovacuum worker in the database.
 */
import { execa } from 'execa'
import { withClient } from '../lib/connection.js'
import { sleep } from '../lib/retry.js'
import { costMark, costSince, type RunCost } from '../hooks/runner/server-cost.js'

export type { RunCost }

/** Vacuum, analyze and checkpoint `url`'s database, then wait until no autovacuum works in it. */
export async function settle(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('vacuum (analyze)')
    await c.query('checkpoint')
    // The OS's dirty pages too: a fresh copy (CREATE DATABASE … FILE_COPY) leaves gigabytes
    // of them at 1M rows, and while the kernel writes them back, any backend that writes is
    // held up now and then (single batches of 300–500 ms in the first minute of a phase).
    // The benchmark's server runs with fsync off, so the checkpoint alone flushes nothing.
    await execa('sync')
    for (let i = 0; i < 600; i++) {
      const { rows } = await c.query(
        `select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker' and datname = current_database()`,
      )
      if (rows[0].n === 0) return
      await sleep(100)
    }
  })
}

/** Settle, then run `work` and measure what it cost the server. */
export async function costOf<T>(url: string, work: () => Promise<T>): Promise<{ result: T; cost: RunCost }> {
  await settle(url)
  const mark = await withClient(url, (c) => costMark(c))
  const result = await work()
  const cost = await withClient(url, (c) => costSince(c, mark))
  return { result, cost }
}

export const toMb = (bytes: number | null) => (bytes === null ? null : Number((bytes / 2 ** 20).toFixed(1)))
