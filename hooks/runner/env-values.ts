/**
 * Reading one setting from the environment, with a message that names the variable, what was
 * expected and what was given. Shared by settings.ts and health/limits.ts.
 */
import { UserError } from '../../lib/errors.js'

/** The variable's value, trimmed; undefined when unset or blank (the default applies). */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

/** A whole number between `min` and `max`, or `fallback` when unset. */
export function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = envValue(env, name)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`${name} must be a whole number between ${min} and ${max} (got "${env[name]}").`)
  }
  return n
}
