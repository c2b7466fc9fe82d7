/**
 * Progress of one backfill step: a live bar on a terminal, plain lines otherwise.
 *
 * Under graphile-migrate the hooks' output is captured and printed after the fact, and in CI
 * it is a log file, so the non-TTY form is a line every few seconds that reads well in a log:
 *   system-hash: 12000/100000 rows, 3400 rows/s, ETA 23s, batch 380
 * (the batch size the runner last chose, see batch-sizer.ts).
 */
import cliProgress from 'cli-progress'

export interface Progress {
  /** Total rows examined so far in this step, and the size of the batch that just committed. */
  update(done: number, batchSize?: number): void
  stop(): void
}

export interface ProgressOptions {
  label: string
  /** Estimated rows to examine; grows if the estimate turns out low. */
  total: number
  log: (line: string) => void
  intervalMs: number
  /** Live bar (true) or periodic lines (false). */
  tty: boolean
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** "label: done/total rows, R rows/s, ETA T[, batch B]" — the plain progress line. */
export function progressLine(label: string, done: number, total: number, elapsedMs: number, batchSize?: number): string {
  const rate = elapsedMs > 0 ? Math.round((done * 1000) / elapsedMs) : 0
  const remaining = Math.max(0, total - done)
  const eta = rate > 0 ? formatDuration((remaining / rate) * 1000) : '?'
  const batch = batchSize === undefined ? '' : `, batch ${batchSize}`
  return `${label}: ${done}/${Math.max(total, done)} rows, ${rate} rows/s, ETA ${eta}${batch}`
}

export function startProgress(opts: ProgressOptions): Progress {
  const started = Date.now()
  let total = Math.max(0, Math.round(opts.total))
  if (opts.tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} [{bar}] {value}/{total} rows | {rate} rows/s | ETA {eta_formatted} | batch {batch}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    )
    bar.start(total, 0, { rate: 0, batch: '-' })
    return {
      update(done, batchSize) {
        if (done > total) {
          total = done
          bar.setTotal(total)
        }
        const elapsed = Date.now() - started
        bar.update(done, { rate: elapsed > 0 ? Math.round((done * 1000) / elapsed) : 0, batch: batchSize ?? '-' })
      },
      stop: () => bar.stop(),
    }
  }
  let lastLine = started
  return {
    update(done, batchSize) {
      const now = Date.now()
      if (now - lastLine < opts.intervalMs) return
      lastLine = now
      opts.log(progressLine(opts.label, done, total, now - started, batchSize))
    },
    stop() {},
  }
}
