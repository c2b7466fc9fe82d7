/**
 * The throttle's decisions (hooks/runner/health/throttle.ts) against a scripted health
 * session: when it waits, what it prints and records (once), the caps, a signal it cannot
 * read, a stop asked for while waiting. The signals' SQL itself runs against a real server
 * with a real standby in test/drills/standby-throttle.test.ts.
 */
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { loadHealthLimits } from '../../hooks/runner/health/limits.js'
import { createThrottle } from '../../hooks/runner/health/throttle.js'

interface Script {
  standbys: Array<Record<string, unknown> & { stuck?: boolean }>
  slots: Record<string, unknown>[]
  vacuums: Record<string, unknown>[]
}

/** A health session answering each signal's query from `script`, recording the ledger writes. */
function scriptedSession(script: Script, onQuery: (sql: string) => void = () => {}) {
  const ledger: Array<{ name: string; values: unknown[] }> = []
  let queries = 0
  const client = {
    async query(sql: string, params: unknown[] = []) {
      queries++
      onQuery(sql)
      if (sql.includes('update migration_hooks.backfills')) {
        ledger.push({ name: params[0] as string, values: params.slice(1) })
        return { rows: [], rowCount: 1 }
      }
      if (sql.includes('pg_stat_replication')) {
        // A `stuck` standby has not replayed any earlier position the throttle asks about.
        const rows = script.standbys.map(({ stuck, ...r }) => ({
          current: '0/1',
          ...r,
          behind_past: stuck === true && params[0] !== null,
          behind_half: stuck === true && params[1] !== null,
        }))
        return { rows: rows.length ? rows : [{ current: '0/1', pid: null }] }
      }
      if (sql.includes('pg_replication_slots')) return { rows: script.slots }
      if (sql.includes('archive_mode')) return { rows: [{ on: false }] }
      if (sql.includes('pg_stat_progress_vacuum')) return { rows: script.vacuums }
      if (sql.includes('to_regclass')) return { rows: [{ oid: '16400' }] }
      throw new Error(`unexpected query: ${sql}`)
    },
    async end() {},
  }
  return { client: client as unknown as pg.Client, ledger, queries: () => queries }
}

const behind = (mb: number) => ({
  pid: 101,
  application_name: 'replica1',
  addr: '10.0.0.2',
  state: 'streaming',
  behind: mb * 1024 * 1024,
  lag_s: 0.1,
})

const limits = (env: NodeJS.ProcessEnv = {}) => ({ ...loadHealthLimits(env), checkIntervalMs: 0 })

describe('the throttle', () => {
  it('goes on at once while healthy, and trusts a healthy reading for HOOKS_HEALTH_CHECK_MS', async () => {
    const s = scriptedSession({ standbys: [behind(1)], slots: [], vacuums: [] })
    const gate = createThrottle({ limits: loadHealthLimits({}), log: () => {}, openSession: async () => s.client })
    expect(await gate.beforeBatch({ backfills: ['a'] })).toEqual({ waited: false })
    const after = s.queries()
    expect(after).toBeGreaterThan(0)
    expect(await gate.beforeBatch({ backfills: ['a'] })).toEqual({ waited: false })
    expect(s.queries()).toBe(after)
  })

  it('past half a limit, it reads again before every batch', async () => {
    const s = scriptedSession({ standbys: [behind(40)], slots: [], vacuums: [] })
    const gate = createThrottle({ limits: loadHealthLimits({}), log: () => {}, openSession: async () => s.client })
    expect(await gate.beforeBatch({ backfills: ['a'] })).toEqual({ waited: false })
    const after = s.queries()
    expect(await gate.beforeBatch({ backfills: ['a'] })).toEqual({ waited: false })
    expect(s.queries()).toBe(2 * after)
  })

  it('waits for a standby over the limit: says so once, records it on the ledger rows, clears it when healthy', async () => {
    const script: Script = { standbys: [behind(212)], slots: [], vacuums: [] }
    let looks = 0
    const s = scriptedSession(script, () => {
      // Healthy again after a few looks.
      if (++looks === 12) script.standbys = [behind(3)]
    })
    const lines: string[] = []
    const gate = createThrottle({ limits: limits(), log: (l) => lines.push(l), openSession: async () => s.client })
    expect(await gate.beforeBatch({ backfills: ['system-hash', 'account-ids'] })).toEqual({ waited: true })
    const waiting = lines.filter((l) => l.startsWith('waiting:'))
    expect(waiting).toHaveLength(1)
    expect(waiting[0]).toMatch(
      /^waiting: standby 10\.0\.0\.2 \(application_name replica1\) is 212 MB behind \(limit 64 MB\) since \d\d:\d\d:\d\d UTC$/,
    )
    expect(lines.filter((l) => l.startsWith('health: going on after waiting'))).toHaveLength(1)
    // Set on both rows (in name order), then cleared on both.
    expect(s.ledger.map((e) => [e.name, e.values[0] === null ? null : 'set'])).toEqual([
      ['account-ids', 'set'],
      ['system-hash', 'set'],
      ['account-ids', null],
      ['system-hash', null],
    ])
    expect(s.ledger[0].values[0]).toMatch(/is 212 MB behind \(limit 64 MB\)$/)
    await gate.close()
  })

  it('replay_lag counts only while the standby has not replayed what the primary wrote that long ago', async () => {
    let clock = 0
    // replay_lag still shows 4 s, an old measurement: the standby replays as it goes.
    const stale = { ...behind(0.5), lag_s: 4 }
    // The clock moves 400 ms per look at the standbys.
    const tick = (sql: string) => {
      if (sql.includes('pg_stat_replication')) clock += 400
    }
    const s = scriptedSession({ standbys: [stale], slots: [], vacuums: [] }, tick)
    const gate = createThrottle({
      limits: limits(),
      log: () => {},
      openSession: async () => s.client,
      now: () => clock,
      shouldStop: () => 'stop',
    })
    for (let i = 0; i < 8; i++) expect(await gate.beforeBatch({ backfills: [] })).toEqual({ waited: false })
    // Stuck: once the throttle's own readings are a second old, it is a second behind.
    const t = scriptedSession({ standbys: [{ ...stale, stuck: true }], slots: [], vacuums: [] }, tick)
    const lines: string[] = []
    const gate2 = createThrottle({
      limits: limits(),
      log: (l) => lines.push(l),
      openSession: async () => t.client,
      now: () => clock,
      shouldStop: () => 'stop',
    })
    const results = []
    for (let i = 0; i < 5; i++) results.push(await gate2.beforeBatch({ backfills: [] }))
    // No reading a second old yet at the first looks; then a breach (and the stop it asks for).
    expect(results[0]).toEqual({ waited: false })
    expect(results.at(-1)).toEqual({ waited: false, stop: 'stop' })
  })

  it('waits for one autovacuum run at most HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS, then writes beside it with a warning', async () => {
    let clock = 0
    const vacuum = (pid: number) => ({ pid, relid: '16400', phase: 'scanning heap', auto: true })
    const script: Script = { standbys: [], slots: [], vacuums: [vacuum(7)] }
    // Every look at the signals takes the clock on by 400 ms.
    const s = scriptedSession(script, () => (clock += 400))
    const lines: string[] = []
    const gate = createThrottle({
      limits: limits({ HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS: '1' }),
      log: (l) => lines.push(l),
      openSession: async () => s.client,
      now: () => clock,
    })
    expect(await gate.beforeBatch({ backfills: ['system-hash'] })).toEqual({ waited: true })
    expect(lines.filter((l) => l.startsWith('waiting: autovacuum is working on api_requests (pid 7'))).toHaveLength(1)
    expect(
      lines.filter((l) => /^health: WARNING: waited .* for: autovacuum .*\(HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS=1\)/.test(l)),
    ).toHaveLength(1)
    // …and as the ledger's note, for db:status.
    expect(s.ledger.some((e) => /^health: waited .*HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS=1/.test(String(e.values[0])))).toBe(true)
    // The same run is not waited for again; another one is.
    expect(await gate.beforeBatch({ backfills: ['system-hash'] })).toEqual({ waited: false })
    script.vacuums = [vacuum(8)]
    const stopping = createThrottle({
      limits: limits({ HOOKS_MAX_AUTOVACUUM_WAIT_SECONDS: '1' }),
      log: () => {},
      openSession: async () => s.client,
      now: () => clock,
      shouldStop: () => 'SIGTERM',
    })
    expect(await stopping.beforeBatch({ backfills: [] })).toEqual({ waited: false, stop: 'SIGTERM' })
  })

  it('a signal it cannot read is said once and not waited on', async () => {
    const hidden = { pid: 101, application_name: null, addr: null, state: null, behind: null, lag_s: null }
    const s = scriptedSession({ standbys: [hidden], slots: [], vacuums: [{ pid: 9, relid: null, phase: null, auto: false }] })
    const lines: string[] = []
    const gate = createThrottle({ limits: limits(), log: (l) => lines.push(l), openSession: async () => s.client })
    for (let i = 0; i < 3; i++) expect(await gate.beforeBatch({ backfills: [] })).toEqual({ waited: false })
    expect(lines).toEqual([
      expect.stringMatching(
        /^health: cannot read the standby signal \(pg_stat_replication's positions are hidden: needs the pg_monitor role/,
      ),
      expect.stringMatching(
        /^health: cannot read the autovacuum signal \(pg_stat_progress_vacuum's tables are hidden: needs the pg_monitor role/,
      ),
    ])
  })

  it('HOOKS_MAX_THROTTLE_WAIT_SECONDS bounds one wait for a slot; unset, it waits as long as it takes', async () => {
    let clock = 0
    const slot = { slot_name: 'cdc', slot_type: 'logical', active: false, retained: 5000 * 1024 * 1024 }
    const s = scriptedSession({ standbys: [], slots: [slot], vacuums: [] }, () => (clock += 1000))
    const lines: string[] = []
    const capped = createThrottle({
      limits: limits({ HOOKS_MAX_THROTTLE_WAIT_SECONDS: '2' }),
      log: (l) => lines.push(l),
      openSession: async () => s.client,
      now: () => clock,
    })
    expect(await capped.beforeBatch({ backfills: [] })).toEqual({ waited: true })
    expect(lines[0]).toMatch(/^waiting: inactive logical replication slot cdc retains 5000 MB of WAL \(limit 1024 MB\) since/)
    expect(lines.some((l) => /WARNING: .*HOOKS_MAX_THROTTLE_WAIT_SECONDS=2/.test(l))).toBe(true)
    // No cap: after many looks (tens of seconds on its clock) it still waits.
    let looks = 0
    const uncapped = createThrottle({
      limits: limits(),
      log: () => {},
      openSession: async () => s.client,
      now: () => clock,
      shouldStop: () => (++looks > 4 ? 'SIGTERM' : undefined),
    })
    expect(await uncapped.beforeBatch({ backfills: [] })).toEqual({ waited: true, stop: 'SIGTERM' })
  })
})
