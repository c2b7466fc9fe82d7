/** A short-lived connection: open, run `fn`, always close (tests, benchmark, scratch work). */
import pg from 'pg'

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  // A server that goes away surfaces as the failing query's error, not as a crash.
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}
