/**
 * The throttle's settings (HOOKS_THROTTLE, HOOKS_MAX_*, HOOKS_HEALTH_CHECK_MS), read with the
 * same plain checks as settings.ts: a bad value is an error naming the variable, before
 * anything is written. The defaults and why they were chosen are in the README's runbook
 * ("Backfills wait for the database's health").
 */
import { UserError } from '../../../lib/errors.js'
import { envValue, wholeNumber } from '../env-values.js'

export interface HealthLimits {
  /** HOOKS_THROTTLE=off turns every check off (the backfills then write as fast as they can). */
  enabled: boolean
  /** A standby whose replay is this many seconds behind (replay_lag) holds the batches. */
  maxReplicaLagSeconds: number
  /** … or this many MB behind the primary's current WAL position (0 = this check off). */
  maxReplicaLagMb: number
  /** WAL that one replication slot, active or not, keeps on the primary's disk (0 = off). */
  maxSlotRetainedMb: number
  /** WAL segments waiting for archive_command (0 = off). */
  maxArchiveBacklogSegments: number
  /** The longest wait for one autovacuum run on api_requests (0 = do not wait for it). */
  maxAutovacuumWaitSeconds: number
  /**
   * The longest wait for one standby, slot or the archiver; then the batches go on, with a
   * warning, until that signal is back under its limit. 0 = wait as long as it takes.
   */
  maxThrottleWaitSeconds: number
  /** How long a healthy reading is trusted, and how often a waiting runner looks again. */
  checkIntervalMs: number
}

type Env = NodeJS.ProcessEnv

/** Seconds may be fractional (0.5): a lag limit below a second is a reasonable wish. */
function seconds(env: Env, name: string, fallback: number, max: number): number {
  const value = envValue(env, name)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n) || n > max) {
    throw new UserError(`${name} must be a number of seconds between 0 and ${max}, such as 1 or 0.5 (got "${env[name]}").`)
  }
  return n
}

function onOff(env: Env, name: string): boolean {
  const value = envValue(env, name)?.toLowerCase()
  if (value === undefined || value === 'on') return true
  if (value === 'off') return false
  throw new UserError(`${name} must be "on" or "off" (got "${env[name]}").`)
}

export function loadHealthLimits(env: Env = process.env): HealthLimits {
  return {
    enabled: onOff(env, 'HOOKS_THROTTLE'),
    maxReplicaLagSeconds: seconds(env, 'HOOKS_MAX_REPLICA_LAG_SECONDS', 1, 86_400),
    maxReplicaLagMb: wholeNumber(env, 'HOOKS_MAX_REPLICA_LAG_MB', 64, 0, 10_000_000),
    maxSlotRetainedMb: wholeNumber(env, 'HOOKS_MAX_SLOT_RETAINED_MB', 1024, 0, 100_000_000),
    maxArchiveBacklogSegments: wholeNumber(env, 'HOOKS_MAX_ARCHIVE_BACKLOG_SEGMENTS', 42, 0, 10_000_000),
    maxAutovacuumWaitSeconds: wholeNumber(env, 'HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS', 600, 0, 86_400),
    maxThrottleWaitSeconds: wholeNumber(env, 'HOOKS_MAX_THROTTLE_WAIT_SECONDS', 0, 0, 31_536_000),
    checkIntervalMs: wholeNumber(env, 'HOOKS_HEALTH_CHECK_MS', 1000, 0, 60_000),
  }
}
