/**
 * PostgreSQL's eight table lock modes, weakest first, and what each does to the proxy.
 *
 * The proxy reads with ACCESS SHARE (SELECT) and writes with ROW EXCLUSIVE (INSERT, UPDATE).
 * From the conflict table in the manual ("Explicit Locking"): ACCESS SHARE conflicts only
 * with ACCESS EXCLUSIVE; ROW EXCLUSIVE conflicts with SHARE and everything stronger. A lock on
 * one of a table's indexes counts as a lock on the table: every query plans with every index
 * of its table, and every write inserts into each one.
 */

/** pg_locks.mode values, weakest first. */
export const LOCK_MODES = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
] as const
export type LockMode = (typeof LOCK_MODES)[number]

export const lockRank = (mode: LockMode): number => LOCK_MODES.indexOf(mode)

export const isLockMode = (mode: string): mode is LockMode => (LOCK_MODES as readonly string[]).includes(mode)

/** The strongest of some modes (null for none). */
export function strongest(modes: Iterable<LockMode>): LockMode | null {
  let best: LockMode | null = null
  for (const m of modes) if (best === null || lockRank(m) > lockRank(best)) best = m
  return best
}

/** 'ShareUpdateExclusiveLock' → 'SHARE UPDATE EXCLUSIVE', as the manual and LOCK TABLE spell it. */
export function lockName(mode: LockMode): string {
  return mode
    .replace(/Lock$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase()
}

export type ProxyImpact = 'reads and writes' | 'writes' | 'neither'

/** What the proxy waits for while `mode` is held on one of its tables. */
export function blocksProxy(mode: LockMode): ProxyImpact {
  if (mode === 'AccessExclusiveLock') return 'reads and writes'
  return lockRank(mode) >= lockRank('ShareLock') ? 'writes' : 'neither'
}

/** Stronger than SHARE UPDATE EXCLUSIVE: reading or writing many rows under it stalls the proxy. */
export const blocksProxyWork = (mode: LockMode | null): boolean => mode !== null && lockRank(mode) > lockRank('ShareUpdateExclusiveLock')
