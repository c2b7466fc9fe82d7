/**
 * Run-time parameters of the hooks' sessions (timeouts, commit mode, GIN merge limit), set in
 * one way everywhere: one set_config() call per parameter, values passed as parameters.
 */
import type pg from 'pg'
import type { HookSettings } from './backfill.js'

/**
 * Set run-time parameters with set_config() (values as parameters, never interpolated):
 * `scope` 'transaction' is `set local` (ends with the batch), 'session' lasts as long as the
 * connection.
 */
export async function setParameters(
  client: pg.ClientBase,
  values: Record<string, string>,
  scope: 'session' | 'transaction',
): Promise<void> {
  const names = Object.keys(values)
  const calls = names.map((name, i) => `set_config('${name}', $${i + 1}, ${scope === 'transaction'})`)
  await client.query(
    `select ${calls.join(', ')}`,
    names.map((name) => values[name]),
  )
}

/** The hooks' bound on waiting for a lock and on one statement, as run-time parameters. */
export function timeoutParameters(settings: HookSettings): Record<string, string> {
  return { lock_timeout: `${settings.lockTimeoutMs}ms`, statement_timeout: `${settings.statementTimeoutMs}ms` }
}
