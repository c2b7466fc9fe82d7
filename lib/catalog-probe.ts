/**
 * Asking whether an object exists without raising an error. A query that fails with
 * "relation … does not exist" is caught by the caller, but the server has already written an
 * ERROR line to its log, and operators alert on those: the tools' own probing must not look
 * like a failure. So every "is it there yet?" goes through the catalog.
 */
import type pg from 'pg'

/** Whether relation `name` (schema-qualified) exists. */
export async function relationExists(client: pg.ClientBase, name: string): Promise<boolean> {
  const { rows } = await client.query(`select pg_catalog.to_regclass($1) is not null as ok`, [name])
  return rows[0].ok
}

/** Whether table `name` (which exists) has column `column`. */
export async function hasColumn(client: pg.ClientBase, name: string, column: string): Promise<boolean> {
  const { rows } = await client.query(
    `select exists (select 1 from pg_catalog.pg_attribute
                     where attrelid = pg_catalog.to_regclass($1) and attname = $2 and not attisdropped) as ok`,
    [name, column],
  )
  return rows[0].ok
}
