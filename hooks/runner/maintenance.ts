/**
 * After the backfills: refresh hourly_stats and ANALYZE, so the planner and the dashboard see
 * the migrated data at once instead of whenever autovacuum gets round to it.
 */
import type pg from 'pg'
import type { HookSettings } from './backfill.js'
import { setParameters } from './parameters.js'
import { retryOnSqlState } from '../../lib/retry.js'

const LOCK_NOT_AVAILABLE = new Set(['55P03'])

/** Run one maintenance statement outside any transaction, with lock_timeout and retries. */
/**
 * A refresh or ANALYZE of a big table takes minutes; a role's own statement_timeout (often a
 * second or two for application roles) must not cancel it. An hour is the explicit bound.
 */
const MAINTENANCE_STATEMENT_TIMEOUT = '1h'

async function withLockRetries(client: pg.ClientBase, settings: HookSettings, sql: string): Promise<void> {
  const { rows } = await client.query<{ timeout: string }>(`select current_setting('statement_timeout') as timeout`)
  await setParameters(client, { lock_timeout: `${settings.lockTimeoutMs}ms`, statement_timeout: MAINTENANCE_STATEMENT_TIMEOUT }, 'session')
  try {
    await retryOnSqlState({ codes: LOCK_NOT_AVAILABLE, maxRetries: settings.maxRetries }, () => client.query(sql))
  } finally {
    await client.query('reset lock_timeout').catch(() => {})
    await setParameters(client, { statement_timeout: rows[0]!.timeout }, 'session').catch(() => {})
  }
}

export type RefreshMode = 'missing' | 'plain' | 'concurrently' | 'skipped'

/**
 * How hourly_stats would be refreshed: CONCURRENTLY (readers are not blocked) needs the view
 * to be populated already and to have a unique index; otherwise a plain refresh.
 */
export async function hourlyStatsRefreshMode(client: pg.ClientBase): Promise<RefreshMode> {
  const { rows } = await client.query<{ populated: boolean; has_unique: boolean }>(
    `select v.ispopulated as populated,
            exists (select 1 from pg_index i where i.indrelid = 'public.hourly_stats'::regclass and i.indisunique and i.indpred is null) as has_unique
     from pg_matviews v where v.schemaname = 'public' and v.matviewname = 'hourly_stats'`,
  )
  if (!rows.length) return 'missing'
  return rows[0].populated && rows[0].has_unique ? 'concurrently' : 'plain'
}

export async function refreshHourlyStats(client: pg.ClientBase, settings: HookSettings): Promise<RefreshMode> {
  const mode = await hourlyStatsRefreshMode(client)
  if (mode === 'missing') return mode
  await withLockRetries(client, settings, `refresh materialized view ${mode === 'concurrently' ? 'concurrently ' : ''}public.hourly_stats`)
  return mode
}

/** Tables to ANALYZE: those changed, plus every public table never analysed (manually or by autovacuum). */
export async function tablesToAnalyze(client: pg.ClientBase, changed: Iterable<string>): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select relname as name from pg_stat_user_tables
     where schemaname = 'public' and last_analyze is null and last_autoanalyze is null`,
  )
  return [...new Set([...changed, ...rows.map((r) => r.name)])].sort()
}

export async function analyzeTables(client: pg.ClientBase, settings: HookSettings, tables: string[]): Promise<void> {
  for (const table of tables) {
    const { rows } = await client.query<{ q: string }>(`select format('%I.%I', 'public', $1::text) as q`, [table])
    await withLockRetries(client, settings, `analyze ${rows[0].q}`)
  }
}
