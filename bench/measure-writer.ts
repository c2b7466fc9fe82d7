/**
 * Does the backfill hurt the application? The writer (bench/writer-child.ts: the proxy's
 * INSERT + response UPDATE at a fixed rate, in its own process) runs twice on the same fresh
 * copy of the data, whose backfill columns are all NULL (so every backfill has its full work):
 *
 *  baseline  alone, for `idleSeconds`, on the copy settled first (bench/server-cost.ts);
 *  during    from just before the hook runner starts (all backfills, default settings,
 *            system_hash first) for `duringSeconds`, or until the runner has finished if
 *            that is sooner. A runner still going at the end of the window is stopped
 *            (bench/hook-child.ts --stop-after-ms); its batch timings up to then are kept.
 *
 * Compared: p99 latency per statement.
 */
import { cleanEnv, startTsx } from './processes.js'
import { startHooks, type HookRun } from './hooks.js'
import { sleep } from '../lib/retry.js'
import { settle } from './server-cost.js'

export interface WriterStats {
  seconds: number
  requests: number
  errors: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  insertP99Ms: number
  updateP99Ms: number
}

export interface WriterResult {
  rate: number
  /** The backfills finished inside the window (false: stopped at its end). */
  hooksFinished: boolean
  baseline: WriterStats
  during: WriterStats
  hooks: HookRun
}

export function startWriter(url: string, rate: number) {
  const child = startTsx('bench/writer-child.ts', ['--rate', String(rate)], cleanEnv({ BENCH_DB_URL: url }))
  return {
    async stop(): Promise<WriterStats> {
      child.stdin?.write('stop\n')
      child.stdin?.end()
      const r = await child
      try {
        return JSON.parse(String(r.stdout).trim().split('\n').at(-1) ?? '') as WriterStats
      } catch {
        throw new Error(`writer failed (exit ${r.exitCode}):\n${String(r.all ?? '').slice(-3000)}`)
      }
    },
  }
}

export async function measureWriter(
  url: string,
  opts: { rate: number; idleSeconds: number; duringSeconds: number },
): Promise<WriterResult> {
  // The baseline on a settled database: vacuumed, checkpointed, no autovacuum working in it.
  // Otherwise the earlier phases' dead rows get vacuumed during the "idle" window, and the
  // ratio compares the backfills with autovacuum instead of with an idle server.
  await settle(url)
  // tsx needs a moment to start; the writer's clock starts when its pool is connected.
  const idle = startWriter(url, opts.rate)
  await sleep(opts.idleSeconds * 1000 + 1500)
  const baseline = await idle.stop()

  const busy = startWriter(url, opts.rate)
  await sleep(2000)
  const hooks = await startHooks(url, undefined, ['--system-hash-first', '--stop-after-ms', String(opts.duringSeconds * 1000)]).done
  const during = await busy.stop()
  if (!hooks.ok) throw new Error(`hooks failed while the writer ran: ${hooks.error}`)
  return { rate: opts.rate, hooksFinished: !hooks.partial, baseline, during, hooks }
}
