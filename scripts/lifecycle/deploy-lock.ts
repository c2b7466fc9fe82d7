/**
 * Two replicas deploying at once both run `db:migrate`. graphile-migrate takes a
 * *try*-lock and fails the loser with "Failed to get exclusive lock". We serialise deploys
 * with our own advisory lock first, waiting (bounded) instead of failing: the second
 * process then finds everything up to date.
 */
import { acquireAdvisoryLock } from '../../lib/advisory-lock.js'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'

/** An arbitrary constant: "APT DEPLOY" — distinct from graphile-migrate's own lock key. */
export const DEPLOY_LOCK_KEY = '2780337569001'

export async function withDeployLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const waitSeconds = Number(process.env.MIGRATE_LOCK_WAIT_SECONDS ?? 300)
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UserError(
      `MIGRATE_LOCK_WAIT_SECONDS must be a non-negative number of seconds (got "${process.env.MIGRATE_LOCK_WAIT_SECONDS}").`,
    )
  }
  // Closing the session (withClient always does) releases the lock even if work() throws.
  return withClient(
    databaseUrl,
    async (client) => {
      await acquireAdvisoryLock(client, DEPLOY_LOCK_KEY, {
        waitSeconds,
        onWait: () => console.log('Another db:migrate is running; waiting for it to finish…'),
        heldTooLong: () =>
          new UserError(
            `Another db:migrate has held the deploy lock for more than ${waitSeconds}s. Wait for it to finish, or raise MIGRATE_LOCK_WAIT_SECONDS.`,
          ),
      })
      return work()
    },
    { applicationName: 'db:migrate deploy lock', serverKeepalives: true },
  )
}
