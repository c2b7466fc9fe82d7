/**
 * The tables the proxy writes all the time: every request, every streamed chunk. On
 * production they are the big ones (100 GB and more), so a statement that locks, scans or
 * rewrites one of them stalls the proxy.
 *
 * One list for the whole project: the migration trace (`db:trace`, and `db:commit`, which
 * refuses a migration that would stall one of these) reads it, and so does the online schema
 * step's documentation. Declaring another table hot is adding it here; the trace's rules
 * then apply to it, and its test (test/chain/trace-chain.test.ts) traces the chain against it.
 */
export const HOT_TABLES = ['public.api_requests', 'public.streaming_chunks'] as const

export type HotTable = (typeof HOT_TABLES)[number]

/** `api_requests` or `public.api_requests` → the list's spelling, or undefined when not hot. */
export function hotTableNamed(name: string): HotTable | undefined {
  const qualified = name.includes('.') ? name : `public.${name}`
  return HOT_TABLES.find((t) => t === qualified)
}
