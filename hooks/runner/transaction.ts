/**
 * One short transaction per batch, bounded so that a backfill never queues application
 * traffic behind it: `lock_timeout` makes a batch give up quickly when a row it needs is
 * locked, and the batch is then retried with exponential backoff; `statement_timeout` stops
 * a batch that is unexpectedly slow.
 *
 * In a dry run the whole hook run is one outer transaction that is rolled back at the end, so
 * a "batch" is a savepoint instead: later backfills still see what earlier ones would have
 * done, and nothing is ever committed.
 */
import type pg from 'pg'
import { UserError } from '../../lib/errors.js'
import { retryOnSqlState } from '../../lib/retry.js'
import type { HookSettings } from './backfill.js'
import { DEFERRED_PENDING_LIST_KB } from './gin-pending.js'
import { HIGH_WATER_SETTING } from './high-water.js'
import { setParameters, timeoutParameters } from './parameters.js'

/** lock_not_available (lock_timeout), deadlock_detected, serialization_failure. */
const RETRYABLE = new Set(['55P03', '40P01', '40001'])

export interface TxOptions {
  settings: HookSettings
  dryRun: boolean
  /** The backfill's high-water mark, for the writers' `preExisting()` test (high-water.ts). */
  highWater?: string
  /** Raise gin_pending_list_limit: the runner merges GIN pending lists after the batch. */
  deferGinMerge?: boolean
  /**
   * In a dry run, keep this batch's writes until the dry run ends (scratch tables that later
   * steps read). Otherwise a dry-run batch is rolled back as soon as it has run, so that it
   * holds no row lock of the application's tables beyond its own duration.
   */
  keepInDryRun?: boolean
  /** Told about every retry (for the log). */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void
  /** Told how long the transaction that committed lasted, BEGIN to COMMIT (for batch sizing). */
  onCommitted?: (txnMs: number) => void
}

async function setLimits(client: pg.ClientBase, settings: HookSettings, deferGinMerge: boolean, highWater?: string): Promise<void> {
  // synchronous_commit off: the batch does not wait for its WAL to reach disk. Safe here
  // because the ledger cursor commits in the same transaction: a crash that loses the last
  // batches loses their cursor with them, and the next run simply redoes them.
  await setParameters(
    client,
    {
      ...timeoutParameters(settings),
      synchronous_commit: 'off',
      ...(deferGinMerge ? { gin_pending_list_limit: String(DEFERRED_PENDING_LIST_KB) } : {}),
      ...(highWater ? { [HIGH_WATER_SETTING]: highWater } : {}),
    },
    'transaction',
  )
}

/** Run `work` in one batch transaction (a savepoint in a dry run), retrying lock timeouts. */
export async function inBatchTransaction<T>(client: pg.ClientBase, opts: TxOptions, work: () => Promise<T>): Promise<T> {
  const { settings, dryRun } = opts
  const [open, commit, abort] = dryRun
    ? [
        'savepoint hooks_batch',
        // Rolling back the savepoint releases every lock its statements took, row and table
        // locks alike; the dry run's transaction keeps only its reads' ACCESS SHARE locks (and
        // those on the scratch tables of `keepInDryRun` steps), which block no read or write.
        opts.keepInDryRun ? 'release savepoint hooks_batch' : 'rollback to savepoint hooks_batch; release savepoint hooks_batch',
        'rollback to savepoint hooks_batch',
      ]
    : ['begin', 'commit', 'rollback']
  try {
    return await retryOnSqlState({ codes: RETRYABLE, maxRetries: settings.maxRetries, onRetry: opts.onRetry }, async () => {
      const opened = performance.now()
      await client.query(open)
      try {
        await setLimits(client, settings, opts.deferGinMerge ?? false, opts.highWater)
        const result = await work()
        await client.query(commit)
        opts.onCommitted?.(performance.now() - opened)
        return result
      } catch (error) {
        await client.query(abort).catch(() => {})
        throw error
      }
    })
  } catch (error) {
    throw explainBatchError(error, settings)
  }
}

/** Turn the timeouts into advice naming the setting to change; other errors pass through. */
function explainBatchError(error: unknown, settings: HookSettings): unknown {
  const e = error as { code?: string; message?: string }
  if (e.code === '55P03') {
    return new UserError(
      `A batch could not get its row locks within HOOKS_LOCK_TIMEOUT_MS (${settings.lockTimeoutMs} ms), ` +
        `${settings.maxRetries} retries included (HOOKS_MAX_RETRIES): other sessions are holding locks on these rows. ` +
        `Run the hooks again when traffic is quieter, or raise those settings.`,
    )
  }
  if (e.code === '57014' && /statement timeout/i.test(e.message ?? '')) {
    return new UserError(
      `A batch took longer than HOOKS_STATEMENT_TIMEOUT_MS (${settings.statementTimeoutMs} ms). ` +
        `Lower HOOKS_BATCH_SIZE (now ${settings.batchSize}) or raise HOOKS_STATEMENT_TIMEOUT_MS.`,
    )
  }
  return error
}
