/**
 * A migration that needs an exclusive lock on a table the proxy uses (ALTER TABLE adding a
 * column) queues behind any transaction that holds a conflicting lock — and while it waits,
 * every later query of the proxy on that table queues behind *it*. `.gmrc` therefore bounds
 * the wait with a short lock_timeout (2 s: above deadlock_timeout, so an autovacuum in the
 * way yields first), and db:migrate retries a migration that timed out, with growing pauses
 * in which the proxy runs freely: each attempt blocks the proxy for at most lock_timeout,
 * instead of one long wait. The failed migration was rolled back whole, so a retry is safe
 * (a `--! no-transaction` one may leave an INVALID index, which `beforeRetry` repairs).
 */
import { UserError } from '../../lib/errors.js'
import { sleep } from '../../lib/retry.js'

/** How many times db:migrate retries a migration that hit lock_timeout (MIGRATE_LOCK_RETRIES). */
export function lockRetries(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MIGRATE_LOCK_RETRIES?.trim()
  if (!raw) return 10
  if (!/^\d+$/.test(raw) || Number(raw) > 1000)
    throw new UserError(`MIGRATE_LOCK_RETRIES must be a whole number from 0 to 1000 (got "${raw}").`)
  return Number(raw)
}

/** Pause before retry `attempt` (1-based): 1 s, 2 s, 4 s, 8 s, then 15 s. */
export const lockRetryPauseMs = (attempt: number) => Math.min(15_000, 1000 * 2 ** (attempt - 1))

const LOCK_TIMEOUT = /canceling statement due to lock timeout|lock_not_available|55P03/i

export async function withLockRetries<R extends { exitCode: number; output: string }>(
  attempt: () => Promise<R>,
  opts: { retries: number; beforeRetry?: () => Promise<void>; log?: (line: string) => void; pause?: (ms: number) => Promise<void> },
): Promise<R> {
  const log = opts.log ?? ((line: string) => console.log(line))
  for (let n = 1; ; n++) {
    const result = await attempt()
    if (result.exitCode === 0 || !LOCK_TIMEOUT.test(result.output) || n > opts.retries) return result
    const pause = lockRetryPauseMs(n)
    log(
      `A migration could not get its lock within lock_timeout (another session, typically the application, holds a conflicting one); ` +
        `it was rolled back. Retry ${n}/${opts.retries} in ${pause / 1000} s (MIGRATE_LOCK_RETRIES).`,
    )
    await (opts.pause ?? sleep)(pause)
    await opts.beforeRetry?.()
  }
}
