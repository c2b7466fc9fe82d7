/** lib/connection.ts: what every session gets, on a real server. */
import { describe, expect, it } from 'vitest'
import { openClient } from '../../lib/connection.js'
import { createTestDatabases } from '../helpers/databases.js'

const show = async (url: string, opts: Parameters<typeof openClient>[1], name: string) => {
  const client = await openClient(url, opts)
  try {
    return (await client.query(`select current_setting($1) as v, inet_server_addr() is not null as tcp`, [name])).rows[0]
  } finally {
    await client.end()
  }
}

describe('openClient', () => {
  it('asks the server to probe a lock-holding session (serverKeepalives), and names the session', async () => {
    const db = await createTestDatabases('connection')
    const probed = await show(db.databaseUrl, { applicationName: 'lock holder', serverKeepalives: true }, 'tcp_keepalives_idle')
    // Over TCP (as every URL here connects) the setting is the session's own.
    expect(probed.tcp).toBe(true)
    expect(probed.v).toBe('30')
    expect((await show(db.databaseUrl, { applicationName: 'lock holder' }, 'application_name')).v).toBe('lock holder')
    const plain = await show(db.databaseUrl, {}, 'tcp_keepalives_idle')
    expect(plain.v).not.toBe('30')
  })
})
