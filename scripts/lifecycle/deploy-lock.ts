/**
 * Two replicas deploying at once both run `db:migrate`. graphile-migrate takes a
 * *try*-lock and fails the loser with "Failed to get exclusive lock". We serialise deploys
 * with our own advisory lock first, waiting (bounded) instead of failing: the second
 * process then finds everything up to date.
 */
import pg from 'pg'
import { UserError } from '../../lib/errors.js'

/** An arbitrary constant: "APT DEPLOY" — distinct from graphile-migrate's own lock key. */
export const DEPLOY_LOCK_KEY = '2780337569001'

export async function withDeployLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const waitSeconds = Number(process.env.MIGRATE_LOCK_WAIT_SECONDS ?? 300)
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UserError(`MIGRATE_LOCK_WAIT_SECONDS must be a non-negative number of seconds (got "${process.env.MIGRATE_LOCK_WAIT_SECONDS}").`)
  }
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'db:migrate deploy lock' })
  client.on('error', () => {})
  await client.connect()
  try {
    const deadline = Date.now() + waitSeconds * 1000
    let announced = false
    for (;;) {
      const { rows } = await client.query('select pg_try_advisory_lock($1::bigint) as ok', [DEPLOY_LOCK_KEY])
      if (rows[0].ok) break
      if (Date.now() >= deadline) {
        throw new UserError(
          `Another db:migrate has held the deploy lock for more than ${waitSeconds}s. Wait for it to finish, or raise MIGRATE_LOCK_WAIT_SECONDS.`,
        )
      }
      if (!announced) {
        console.log('Another db:migrate is running; waiting for it to finish…')
        announced = true
      }
      await new Promise((r) => setTimeout(r, 500))
    }
    return await work()
  } finally {
    // Closing the session releases the lock even if unlock is never reached.
    await client.end().catch(() => {})
  }
}
