/** The hooks' single database session. */
import pg from 'pg'
import { registerUrlSecret } from '../../scripts/lib/redact.js'

export async function connect(databaseUrl: string, applicationName: string): Promise<pg.Client> {
  registerUrlSecret(databaseUrl)
  const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName })
  // A dropped connection surfaces as the failing query's error; without a listener an idle
  // 'error' event would crash the process instead.
  client.on('error', () => {})
  await client.connect()
  // Unqualified names mean the application's schema, whatever the role's own search_path.
  await client.query(`set search_path = public`)
  return client
}

export async function tableExists(client: pg.ClientBase, name: string): Promise<boolean> {
  const { rows } = await client.query(`select to_regclass($1) is not null as ok`, [name])
  return rows[0].ok
}
