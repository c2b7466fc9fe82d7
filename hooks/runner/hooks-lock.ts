/**
 * Only one hook run per database at a time: two deploys, or `watch` firing while a migrate
 * runs, would otherwise walk the same rows and fight over the ledger. The lock is a session
 * advisory lock (lib/advisory-lock.ts), so a killed run never leaves the next one locked out.
 */
import type pg from 'pg'
import { acquireAdvisoryLock, releaseAdvisoryLock } from '../../lib/advisory-lock.js'
import { UserError } from '../../lib/errors.js'

/** "APT HOOKS": distinct from the deploy lock (…001) and graphile-migrate's own key. */
export const HOOKS_LOCK_KEY = '2780337569002'

/** Take the hooks lock on `client`'s session, waiting at most `waitSeconds`. */
export async function acquireHooksLock(client: pg.ClientBase, waitSeconds: number, log: (line: string) => void): Promise<void> {
  await acquireAdvisoryLock(client, HOOKS_LOCK_KEY, {
    waitSeconds,
    onWait: () => log(`Another migration hook run is in progress; waiting up to ${waitSeconds}s for it to finish…`),
    heldTooLong: () =>
      new UserError(
        `Another migration hook run has held the hooks lock for more than ${waitSeconds}s (HOOKS_LOCK_WAIT_SECONDS). ` +
          `Wait for it to finish (its progress is in migration_hooks.backfills), or raise HOOKS_LOCK_WAIT_SECONDS.`,
      ),
  })
}

export async function releaseHooksLock(client: pg.ClientBase): Promise<void> {
  await releaseAdvisoryLock(client, HOOKS_LOCK_KEY)
}
