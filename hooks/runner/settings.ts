/**
 * Every tunable of the hooks, read from the environment in one place so that a typo fails
 * before anything is written, with a message that names the variable.
 */
import type { HookSettings } from './backfill.js'
import { wholeNumber } from './env-values.js'
import { loadHealthLimits } from './health/limits.js'

/** Whole-number setting with bounds; the message says what was expected and what was given. */
const integer =
  (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  (env: NodeJS.ProcessEnv): number =>
    wholeNumber(env, name, fallback, min, max)

const readers = {
  batchSize: integer('HOOKS_BATCH_SIZE', 400, 1, 1_000_000),
  batchTargetMs: integer('HOOKS_BATCH_TARGET_MS', 45, 0, 3_600_000),
  batchDelayMs: integer('HOOKS_BATCH_DELAY_MS', 0, 0, 600_000),
  lockTimeoutMs: integer('HOOKS_LOCK_TIMEOUT_MS', 2000, 1, 3_600_000),
  statementTimeoutMs: integer('HOOKS_STATEMENT_TIMEOUT_MS', 30_000, 1, 86_400_000),
  maxRetries: integer('HOOKS_MAX_RETRIES', 5, 0, 100),
  subtaskWindowMs: integer('HOOKS_SUBTASK_WINDOW_MS', 60_000, 0, 86_400_000),
  lockWaitSeconds: integer('HOOKS_LOCK_WAIT_SECONDS', 300, 0, 86_400),
  progressIntervalMs: integer('HOOKS_PROGRESS_INTERVAL_MS', 5000, 100, 3_600_000),
  inlineMaxRows: integer('HOOKS_INLINE_MAX_ROWS', 10_000, 0, Number.MAX_SAFE_INTEGER),
  workers: integer('HOOKS_WORKERS', 1, 1, 64),
  claimLeaseSeconds: integer('HOOKS_CLAIM_LEASE_SECONDS', 60, 1, 86_400),
  reclaimEveryPercent: integer('HOOKS_RECLAIM_EVERY_PERCENT', 10, 0, 100),
}

/** Parse and validate all hook settings from `env`. Throws a UserError naming the bad variable. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): HookSettings {
  const settings = Object.fromEntries(Object.entries(readers).map(([key, read]) => [key, read(env)])) as Omit<
    HookSettings,
    'accountMappingFile' | 'health'
  >
  const file = env.ACCOUNT_MAPPING_FILE?.trim()
  return { ...settings, health: loadHealthLimits(env), accountMappingFile: file ? file : undefined }
}
