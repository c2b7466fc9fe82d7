/**
 * Two replicas deploying at once both run `db:migrate`. graphile-migrate takes a
 * *try*-lock and fails the loser with "Failed to get exclusive lock". We serialise deploys
 * with our own advisory lock first, waiting (bounded) instead of failing: the second
 * process then finds everything up to date.
 */
import type pg from 'pg'
import { acquireAdvisoryLock, tryAdvisoryLock } from '../../lib/advisory-lock.js'
import { withClient } from '../../lib/connection.js'
import { UserError } from '../../lib/errors.js'
import { ONLINE_SCHEMA_LOCK_KEY, onlineStepHolder } from './online-schema.js'

/** An arbitrary constant: "APT DEPLOY" — distinct from graphile-migrate's own lock key. */
export const DEPLOY_LOCK_KEY = '2780337569001'

/** The seconds a deploy waits for a lock another deploy holds (MIGRATE_LOCK_WAIT_SECONDS). */
export function deployLockWaitSeconds(): number {
  const waitSeconds = Number(process.env.MIGRATE_LOCK_WAIT_SECONDS ?? 300)
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UserError(
      `MIGRATE_LOCK_WAIT_SECONDS must be a non-negative number of seconds (got "${process.env.MIGRATE_LOCK_WAIT_SECONDS}").`,
    )
  }
  return waitSeconds
}

/**
 * Run `work` holding the deploy lock; it gets the lock's session, which sits idle meanwhile
 * and may hold further session locks for the same span (they end with it).
 */
export async function withDeployLock<T>(databaseUrl: string, work: (lockSession: pg.ClientBase) => Promise<T>): Promise<T> {
  const waitSeconds = deployLockWaitSeconds()
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
      return work(client)
    },
    { applicationName: 'db:migrate deploy lock', serverKeepalives: true },
  )
}

/**
 * Under the deploy lock, before pending migrations: take the online schema step's lock on the
 * deploy lock's session, for as long as it lives. Another deploy's online step may be building
 * an index for hours (it holds no deploy lock); a migration altering that table meanwhile
 * would wait behind the build, and the proxy's writes behind the migration. So the
 * migrations wait for it, up to MIGRATE_LOCK_WAIT_SECONDS, then refuse with nothing applied.
 */
export async function holdOnlineStep(lockSession: pg.ClientBase): Promise<void> {
  if (await tryAdvisoryLock(lockSession, ONLINE_SCHEMA_LOCK_KEY)) return
  const waitSeconds = deployLockWaitSeconds()
  const holder = (await onlineStepHolder(lockSession)) ?? 'another session'
  console.log(`Migrations pending; waiting for the online schema step of ${holder} to finish…`)
  await acquireAdvisoryLock(lockSession, ONLINE_SCHEMA_LOCK_KEY, {
    waitSeconds,
    heldTooLong: () =>
      new UserError(
        `Migrations are pending, and the online schema step of ${holder} has been running for more than ${waitSeconds}s ` +
          '(MIGRATE_LOCK_WAIT_SECONDS). Nothing was applied: a migration now would wait behind its index build, and the ' +
          "proxy's writes behind the migration. Deploy again once it has finished (`npm run db:migrate -- --plan` shows what " +
          'is queued), or raise MIGRATE_LOCK_WAIT_SECONDS.',
      ),
  })
}
