/**
 * Scratch tables that a finished pass no longer needs are retired — renamed — in the
 * transaction that marks the pass done, and dropped afterwards, one transaction each.
 *
 * Why not drop them there: a dropped table's files go when its transaction commits, and that
 * is work in proportion to their size (about 0.1 s per GB measured here), done while the
 * transaction holds the ledger's rows. At 1M rows the done transaction dropping every scratch
 * table took 240–260 ms, the longest of the whole run; at ten times the rows it would take
 * seconds. A rename only touches the catalog, and the name the steps use is gone all the
 * same (to_regclass of it is null), atomically with the ledger saying done.
 *
 * A run killed between the two leaves retired tables behind: the next run's start drops them.
 * Only tables of the ledger's schema whose name starts with RETIRED_PREFIX are ever dropped.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { LEDGER_SCHEMA } from './ledger.js'

export const RETIRED_PREFIX = 'retired_'

/** Rename each existing table of `tables` (qualified, in the ledger's schema), in the caller's transaction. */
export async function retireTables(client: pg.ClientBase, tables: readonly string[]): Promise<void> {
  for (const table of tables) {
    const [schema, name] = table.split('.')
    if (schema !== LEDGER_SCHEMA || !name) throw new Error(`retireTables: ${table} is not a table of ${LEDGER_SCHEMA}`)
    if (!(await client.query(`select to_regclass($1) is not null as found`, [table])).rows[0].found) continue
    // A random tag, so that a scratch table created again (a version bump) can be retired again.
    const retired = `${RETIRED_PREFIX}${randomBytes(4).toString('hex')}_${name}`.slice(0, 63)
    await client.query(`alter table ${table} rename to ${pg.escapeIdentifier(retired)}`)
  }
}

/** Drop every retired table, each in a transaction of its own. Returns how many. */
export async function dropRetiredTables(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relkind = 'r' and starts_with(c.relname, $2) order by c.relname`,
    [LEDGER_SCHEMA, RETIRED_PREFIX],
  )
  for (const { name } of rows) {
    // Explicit BEGIN/COMMIT: the transaction is measured like the batches (bench/hook-child.ts).
    await client.query('begin')
    try {
      await client.query(`drop table if exists ${LEDGER_SCHEMA}.${pg.escapeIdentifier(name)}`)
      await client.query('commit')
    } catch (error) {
      await client.query('rollback').catch(() => {})
      throw error
    }
  }
  return rows.length
}
