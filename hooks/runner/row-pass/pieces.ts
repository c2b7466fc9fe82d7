/**
 * How many rows one walk transaction writes. The walk reads a range of pages, but what a
 * transaction costs is the rows it writes, and pages differ: at 1M bench rows a page held
 * 1 to 12 rows (a row whose bodies stay inline fills a page; one whose bodies are TOASTed
 * takes a few dozen bytes of it). Sized from the table's average, a batch planned for 400
 * rows wrote 150 to 608, and the transactions over 200 ms were nearly all the denser ones.
 *
 * So a range read is written in pieces of at most the batch size in rows, cut between pages
 * (the chunk's recorded position is a page: a page is never split), and the next range is
 * planned from the density of the pending rows just read, not from the table's average.
 */

const CTID = /^\((\d+),(\d+)\)$/

/** Page and item of a row's ctid, as the read returns it ("(page,item)"). */
function ctidOf(tid: unknown): [number, number] {
  const m = CTID.exec(String(tid))
  if (!m) throw new Error(`row pass: unexpected ctid ${JSON.stringify(tid)}`)
  return [Number(m[1]), Number(m[2])]
}

/** The page of a row's ctid. */
export const pageOf = (tid: unknown): number => ctidOf(tid)[0]

export interface Piece<Row> {
  /** First page of the piece. */
  from: number
  /** The page after the piece: the chunk's position once the piece is written. */
  to: number
  rows: Row[]
}

/**
 * The first piece of `rows` (read from pages [from, to), in page order) holding at most
 * `maxRows` rows, ending between two pages; at least one page, however many rows it has.
 * The piece that takes the last row ends at `to`, so that the pages after it (rows nobody
 * needs) are covered too.
 */
export function firstPiece<Row extends Record<string, unknown>>(rows: Row[], from: number, to: number, maxRows: number): Piece<Row> {
  if (rows.length <= maxRows) return { from, to, rows }
  // Cut before the page of row `maxRows` (the first row that does not fit), unless that
  // leaves nothing: then the piece is the first page with rows, whole.
  let cut = maxRows
  const pageAtCut = pageOf(rows[cut].tid)
  while (cut > 0 && pageOf(rows[cut - 1].tid) === pageAtCut) cut--
  if (cut === 0) {
    const first = pageOf(rows[0].tid)
    while (cut < rows.length && pageOf(rows[cut].tid) === first) cut++
    if (cut === rows.length) return { from, to, rows }
  }
  return { from, to: pageOf(rows[cut].tid), rows: rows.slice(0, cut) }
}

/** Rows in page order (a TID range scan returns them so; this does not rely on it). */
export function inPageOrder<Row extends Record<string, unknown>>(rows: Row[]): Row[] {
  const keyed = rows.map((r) => ({ r, k: ctidOf(r.tid) }))
  keyed.sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1])
  return keyed.map((x) => x.r)
}

/**
 * Rows per page to plan the next range with: the pending rows the last range held, but never
 * below a quarter of the table's average (a range of rows already done must not make the next
 * read span the rest of the chunk).
 */
export function plannedDensity(rowsRead: number, pages: number, tableAverage: number): number {
  const average = Math.max(tableAverage, 1)
  if (pages <= 0) return average
  return Math.max(rowsRead / pages, average / 4)
}
