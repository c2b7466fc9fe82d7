/**
 * Bounded disk during the row pass. Every row the walk changes gets a new version, and the
 * old one stays on its page until a vacuum: with production's full pages the new versions
 * land at the end of the file, and api_requests' heap doubles (100 GB more on a 100 GB
 * table) before autovacuum comes round, if it does in time.
 *
 * So the walk vacuums the part of the heap it has walked, every HOOKS_RECLAIM_EVERY_PERCENT
 * of it, and once more when the walk ends: the old versions there become free space, and the
 * versions written next (the rest of the walk, then sub-task linking) reuse it instead of
 * growing the file. The vacuum is the cheap kind:
 *
 *  - INDEX_CLEANUP OFF: it prunes heap pages only and does not scan the 24 indexes (two
 *    GIN), which would cost more than the pass. The dead line pointers (4 bytes each) and the
 *    index entries pointing at them stay for the next autovacuum, as after any update.
 *  - TRUNCATE OFF: no ACCESS EXCLUSIVE lock at the end to shorten the file.
 *  - PROCESS_TOAST OFF: the pass does not change the bodies, so their TOAST is untouched.
 *  - Pages still all-visible (not walked yet, on a table vacuumed before) are skipped by the
 *    visibility map, so each vacuum reads about what was walked since the last.
 *
 * It takes SHARE UPDATE EXCLUSIVE, which the proxy's reads and writes never wait for; one
 * runs at a time, on a session of its own, beside the walk. SKIP_LOCKED: when another vacuum
 * (autovacuum) or a DDL holds the table, that round is skipped at once — no wait, and no
 * ERROR in the server's log. Only the table's owner may vacuum it: otherwise the run says so
 * once and goes on without it.
 */
import type pg from 'pg'
import { explain } from '../../../lib/errors.js'

export interface HeapReclaimer {
  /** `pages` more pages walked by this process. */
  walked(pages: number): void
  /** The walk is over: one last vacuum, awaited. */
  finish(): Promise<void>
  /** Wait for a vacuum in progress (a stop, a failure). */
  settled(): Promise<void>
  /** Seconds spent vacuuming (beside the walk, and at its end). */
  seconds(): number
}

export const NO_RECLAIM: HeapReclaimer = { walked: () => {}, finish: async () => {}, settled: async () => {}, seconds: () => 0 }

const VACUUM = 'vacuum (index_cleanup off, truncate off, process_toast off, skip_locked) public.api_requests'

/** Whether this session may vacuum api_requests (its owner, a member of the owner's role, or a superuser). */
async function mayVacuum(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query(`
    select pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
           or (select rolsuper from pg_catalog.pg_roles where rolname = current_user) as ok
      from pg_catalog.pg_class c where c.oid = 'public.api_requests'::regclass`)
  return rows[0]?.ok === true
}

export function heapReclaimer(
  openSession: () => Promise<pg.Client>,
  heapPages: number,
  everyPercent: number,
  log: (line: string) => void,
): HeapReclaimer {
  if (everyPercent <= 0) return NO_RECLAIM
  const every = Math.max(1, Math.ceil((heapPages * everyPercent) / 100))
  let since = 0
  let running: Promise<void> | null = null
  let session: pg.Client | null = null
  let disabled = false
  let ms = 0

  async function vacuumOnce(): Promise<void> {
    if (disabled) return
    const started = performance.now()
    try {
      if (!session) {
        session = await openSession()
        // Its lock blocks no application statement, so no time limit: a vacuum of a stretch of a 100 GB heap takes minutes.
        await session.query(`select pg_catalog.set_config('statement_timeout', '0', false)`)
        if (!(await mayVacuum(session))) {
          disabled = true
          log(
            'row pass: this role does not own api_requests, so the walk cannot vacuum the part it has walked; ' +
              'the heap grows by about the rows changed until autovacuum reclaims it (see README, "What adoption costs your server").',
          )
          return
        }
      }
      await session.query(VACUUM)
    } catch (error) {
      log(`row pass: vacuum of the walked part failed (${explain(error)}); going on without it.`)
      disabled = true
    } finally {
      ms += performance.now() - started
    }
  }

  const closeSession = async () => {
    await session?.end().catch(() => {})
    session = null
  }

  const start = () => {
    running ??= vacuumOnce().finally(() => {
      running = null
    })
    return running
  }

  return {
    walked(pages) {
      since += pages
      if (since < every || running) return
      since = 0
      void start()
    },
    async finish() {
      await running
      await start()
      await closeSession()
    },
    async settled() {
      await running
      await closeSession()
    },
    seconds: () => ms / 1000,
  }
}
