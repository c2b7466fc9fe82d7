/**
 * Refuse a connection pooler in transaction (or statement) pooling mode, such as PgBouncer's
 * `pool_mode = transaction`. There, consecutive statements of one client may run on different
 * server sessions: session advisory locks (the deploy and hooks locks), session settings
 * (lock_timeout, search_path) and the read-ahead session's ordering all silently stop holding,
 * so two replicas could migrate at once.
 *
 * The probe: client A notes its server session's pid; client B, a second connection, opens a
 * transaction and notes its own. A real session (direct, or session pooling) keeps A's server
 * session to A, so B always gets another one; a transaction pooler hands A's idle server
 * session to B (PgBouncer reuses the most recently freed one). A's pid changing between its own
 * statements gives it away as well.
 */
import { openClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'

const pidOf = async (client: { query: (sql: string) => Promise<{ rows: { pid: number }[] }> }) =>
  (await client.query('select pg_backend_pid() as pid')).rows[0]!.pid

/** True when `url` reaches PostgreSQL through a transaction- or statement-pooling proxy. */
export async function isTransactionPooled(url: string): Promise<boolean> {
  const a = await openClient(url, { applicationName: 'pooler check' })
  try {
    const b = await openClient(url, { applicationName: 'pooler check' })
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const first = await pidOf(a)
        await b.query('begin')
        const other = await pidOf(b)
        await b.query('commit')
        const again = await pidOf(a)
        if (other === first || again !== first) return true
      }
      return false
    } finally {
      await b.end().catch(() => {})
    }
  } finally {
    await a.end().catch(() => {})
  }
}

export async function assertSessionConnection(url: string, name = 'DATABASE_URL'): Promise<void> {
  if (!(await isTransactionPooled(url))) return
  throw new UserError(
    `${name} goes through a connection pooler in transaction or statement pooling mode (PgBouncer's pool_mode = transaction?). ` +
      'Migrations need one server session per connection: their advisory locks and session settings do not hold there, so two ' +
      'deploys could migrate at once. Nothing was changed. Use a direct connection to PostgreSQL, or a session-pooled URL, for ' +
      'db:migrate and db:backfill; the proxy itself can keep the pooled one.',
  )
}
