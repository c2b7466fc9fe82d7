/**
 * The throttle: before each batch transaction, the runner asks `beforeBatch()`. While every
 * signal (signals.ts) is under its limit it returns at once — a healthy reading is trusted for
 * HOOKS_HEALTH_CHECK_MS, so tiny batches do not query every time (unless some value is past
 * half its limit: then every batch asks, so none begins far past it). Over a limit it waits: it
 * prints once what it waits for and since when, records the same on the ledger rows of the
 * waiting backfills (db:status shows `throttled: …` from any machine), looks again every
 * interval, and returns once the database is healthy. It never fails a backfill.
 *
 * While waiting the runner holds no transaction and no lock but the session-level hooks lock
 * (and a row-pass chunk's claim, a committed column whose heartbeat `keepAlive` refreshes):
 * the caller calls it between batches, and `release` lets it end anything it holds open
 * first (the final pass's snapshot). Every worker of a process, and every process that joins
 * a row pass, asks its own throttle: all obey the same checks.
 *
 * A signal the role may not read is said once and then left alone. A wait for one standby,
 * slot or the archiver longer than HOOKS_MAX_THROTTLE_WAIT_SECONDS (0 = no bound, the
 * default), or for one autovacuum run longer than HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS, ends
 * with a warning (printed, and as the ledger's note); that one is then not waited for again
 * until it is back under its limit.
 */
import type pg from 'pg'
import { sleep } from '../../../lib/retry.js'
import { LEDGER_TABLE } from '../ledger.js'
import { formatDuration } from '../progress.js'
import type { HealthLimits } from './limits.js'
import { activeKinds, type Breach, type PastPosition, readSignals, type SignalKind, type StandbyHistory } from './signals.js'

export interface BeforeBatch {
  /** The backfills (ledger rows) this caller writes for: marked throttled while it waits. */
  backfills: readonly string[]
  /** Called once before the first pause: end anything held open (a snapshot). */
  release?: () => Promise<void>
  /** Called at every look while waiting (a row-pass chunk's heartbeat). */
  keepAlive?: () => Promise<void>
}

export interface Waited {
  /** Whether it had to wait (a caller that released something reopens it). */
  waited: boolean
  /** A stop (SIGTERM) was asked for while waiting: the caller stops as after a batch. */
  stop?: string
}

export interface HealthGate {
  beforeBatch(opts: BeforeBatch): Promise<Waited>
  /** Clears what this process recorded and closes the health session. */
  close(): Promise<void>
}

/** The gate of a dry run, a shadow database, or HOOKS_THROTTLE=off. */
export const NO_THROTTLE: HealthGate = {
  beforeBatch: async () => ({ waited: false }),
  close: async () => {},
}

export interface ThrottleOptions {
  limits: HealthLimits
  /** Opens the health session (on first use: a run with nothing to do opens none). */
  openSession: () => Promise<pg.Client>
  log: (line: string) => void
  shouldStop?: () => string | undefined
  now?: () => number
}

/** 12:04:10 UTC: a wait's start, as the log line and db:status print it. */
export const clockTime = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`

/** How often the ledger's throttled text is refreshed while the numbers in it change. */
const LEDGER_REFRESH_MS = 5000

interface Episode {
  since: number
  key: string
  text: string
  names: Set<string>
  recordedAt: number
}

export function createThrottle(opts: ThrottleOptions): HealthGate {
  const { limits, log } = opts
  const now = opts.now ?? Date.now
  const pollMs = Math.max(limits.checkIntervalMs, 200)
  const unreadable = new Set<SignalKind>()
  /** When each breaching standby/slot/… was first seen over its limit, for the caps. */
  const firstSeen = new Map<string, number>()
  /** Breaches waited for up to their cap: not waited for again until they are healthy. */
  const exempt = new Set<string>()
  let session: Promise<pg.Client> | null = null
  let reading: Promise<{ waiting: Breach[]; near: boolean }> | null = null
  let healthyAt = Number.NEGATIVE_INFINITY
  let episode: Episode | null = null
  let ledgerBroken = false
  /** The primary's WAL position at earlier readings, oldest first (the standby check's clock). */
  const positions: Array<{ t: number; lsn: string }> = []

  /** The newest reading at least `seconds` old. */
  const positionAgo = (seconds: number, t: number): PastPosition | null => {
    let found: { t: number; lsn: string } | undefined
    for (const p of positions) if (t - p.t >= seconds * 1000) found = p
    return found ? { lsn: found.lsn, ageSeconds: (t - found.t) / 1000 } : null
  }
  const history = (t: number): StandbyHistory => ({
    past: positionAgo(limits.maxReplicaLagSeconds, t),
    half: positionAgo(limits.maxReplicaLagSeconds / 2, t),
    record(lsn) {
      positions.push({ t, lsn })
      // Keep only the newest reading older than the limit, and those after it.
      while (positions.length > 1 && t - positions[1].t >= limits.maxReplicaLagSeconds * 1000) positions.shift()
      if (positions.length > 10_000) positions.splice(0, positions.length - 10_000)
    },
  })

  const client = () => {
    session ??= opts.openSession()
    return session
  }

  /** One write on the health session, outside any transaction; a ledger it cannot write is said once. */
  const record = async (sql: string, names: Iterable<string>, params: unknown[]) => {
    if (ledgerBroken) return
    try {
      const c = await client()
      // One row per statement, in name order, as the batches lock them: no deadlock.
      for (const name of [...names].sort()) await c.query(sql, [name, ...params])
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (typeof code !== 'string') throw error
      // A batch held the row longer than HOOKS_LOCK_TIMEOUT_MS: the next change is recorded.
      if (code === '55P03' || code === '57014') return
      ledgerBroken = true
      log(`health: cannot record waits in ${LEDGER_TABLE} (${(error as Error).message}); waiting without it.`)
    }
  }
  const setThrottled = (names: Iterable<string>, text: string | null, since: number | null) =>
    record(`update ${LEDGER_TABLE} set throttled = $2, throttled_since = to_timestamp($3::float8 / 1000) where name = $1`, names, [
      text,
      since,
    ])

  async function readOnce(): Promise<{ waiting: Breach[]; near: boolean }> {
    const kinds = activeKinds(limits).filter((k) => !unreadable.has(k))
    if (kinds.length === 0) return { waiting: [], near: false }
    const result = await readSignals(await client(), limits, kinds, history(now()))
    for (const u of result.unreadable) {
      if (unreadable.has(u.kind)) continue
      unreadable.add(u.kind)
      log(`health: cannot read the ${u.kind} signal (${u.why}); not throttling on it.`)
    }
    const t = now()
    const seen = new Set(result.breaches.map((b) => b.key))
    for (const key of [...firstSeen.keys()]) if (!seen.has(key)) firstSeen.delete(key)
    for (const key of [...exempt]) if (!seen.has(key)) exempt.delete(key)
    const waiting: Breach[] = []
    for (const b of result.breaches) {
      if (exempt.has(b.key)) continue
      if (!firstSeen.has(b.key)) firstSeen.set(b.key, t)
      const [cap, setting] =
        b.kind === 'autovacuum'
          ? [limits.maxAutovacuumWaitSeconds, 'HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS']
          : [limits.maxThrottleWaitSeconds, 'HOOKS_MAX_THROTTLE_WAIT_SECONDS']
      if (cap > 0 && t - firstSeen.get(b.key)! >= cap * 1000) {
        exempt.add(b.key)
        const warning = `waited ${formatDuration(t - firstSeen.get(b.key)!)} for: ${b.text}; writing on beside it (${setting}=${cap})`
        log(`health: WARNING: ${warning}.`)
        if (episode) await record(`update ${LEDGER_TABLE} set note = $2 where name = $1`, episode.names, [`health: ${warning}`])
        continue
      }
      waiting.push(b)
    }
    return { waiting, near: result.near }
  }

  /** One reading at a time: workers asking together share it. */
  const check = () => {
    reading ??= readOnce().finally(() => {
      reading = null
    })
    return reading
  }

  async function waitingFor(breaches: Breach[], names: readonly string[]): Promise<void> {
    const first = breaches[0]
    const more = breaches.length > 1 ? ` (and ${breaches.length - 1} more)` : ''
    const text = first.text + more
    const t = now()
    if (!episode) {
      episode = { since: t, key: first.key, text, names: new Set(names), recordedAt: t }
      log(`waiting: ${text} since ${clockTime(t)}`)
      await setThrottled(episode.names, text, episode.since)
      return
    }
    const ep = episode
    const added = names.filter((n) => !ep.names.has(n))
    for (const n of added) ep.names.add(n)
    if (first.key !== ep.key) log(`waiting: ${text} (waiting since ${clockTime(ep.since)})`)
    const changed = first.key !== ep.key || (text !== ep.text && t - ep.recordedAt >= LEDGER_REFRESH_MS)
    ep.key = first.key
    if (changed || added.length) {
      ep.text = text
      ep.recordedAt = t
      await setThrottled(changed ? ep.names : added, ep.text, ep.since)
    }
  }

  async function healthyAgain(): Promise<void> {
    const ep = episode
    if (!ep) return
    episode = null
    log(`health: going on after waiting ${formatDuration(now() - ep.since)} (for: ${ep.text})`)
    await setThrottled(ep.names, null, null)
  }

  return {
    async beforeBatch(call) {
      if (now() - healthyAt < limits.checkIntervalMs) return { waited: false }
      let waited = false
      for (;;) {
        const { waiting: breaches, near } = await check()
        if (breaches.length === 0) {
          // Close to a limit, the next batch asks again: it stops within about one batch past it.
          healthyAt = near ? Number.NEGATIVE_INFINITY : now()
          if (waited || episode) await healthyAgain()
          return { waited }
        }
        healthyAt = Number.NEGATIVE_INFINITY
        const stop = opts.shouldStop?.()
        if (stop) return { waited, stop }
        if (!waited) await call.release?.()
        waited = true
        await waitingFor(breaches, call.backfills)
        await call.keepAlive?.()
        await sleep(pollMs)
      }
    },
    async close() {
      if (!session) return
      const c = await session.catch(() => null)
      if (episode) await setThrottled(episode.names, null, null).catch(() => {})
      episode = null
      await c?.end().catch(() => {})
    },
  }
}
