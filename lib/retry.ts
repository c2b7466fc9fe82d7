/** Waiting and retrying, shared by the hooks' batches and maintenance statements. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const MAX_BACKOFF_MS = 30_000

/** Delay before retry `attempt` (1-based): 100 ms, 200 ms, 400 ms, … capped at 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 100 * 2 ** (attempt - 1))
}

export interface RetryOptions {
  /** SQLSTATEs worth another try (e.g. 55P03 lock_not_available). */
  codes: ReadonlySet<string>
  maxRetries: number
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void
}

/**
 * Run `attempt` until it succeeds, retrying with exponential backoff while it fails with
 * one of `codes`, at most `maxRetries` times; then the last error is thrown.
 */
export async function retryOnSqlState<T>(opts: RetryOptions, attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt()
    } catch (error) {
      const code = (error as { code?: string }).code
      if (!code || !opts.codes.has(code) || n >= opts.maxRetries) throw error
      const delay = backoffMs(n + 1)
      opts.onRetry?.(n + 1, delay, error)
      await sleep(delay)
    }
  }
}
