/**
 * Per-table row checksums over chosen columns, to prove that migrating loses no row and no
 * value. Rows are ordered by their primary key, values rendered as text.
 */
import type pg from 'pg'

export type Checksums = Record<string, { rows: number; checksum: string }>

/** Columns of every public base table, except the ones listed per table. */
export async function tableColumns(c: pg.Client): Promise<Record<string, string[]>> {
  const { rows } = await c.query(
    `select c.relname as t, array_agg(a.attname::text order by a.attname) as cols
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = 'public' and c.relkind = 'r'
      group by c.relname`,
  )
  return Object.fromEntries(rows.map((r) => [r.t, r.cols]))
}

async function primaryKey(c: pg.Client, table: string): Promise<string[]> {
  const { rows } = await c.query(
    `select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
      where i.indrelid = $1::regclass and i.indisprimary order by a.attnum`,
    [`public.${table}`],
  )
  return rows.map((r) => r.attname)
}

/**
 * Checksums of `columns` per table. `rename` maps a column name as it was before to the name
 * it has now (legacy `domain` → `train_id`).
 */
export async function rowChecksums(
  c: pg.Client,
  columns: Record<string, string[]>,
  rename: Record<string, string> = {},
): Promise<Checksums> {
  const out: Checksums = {}
  for (const [table, cols] of Object.entries(columns).sort()) {
    const pk = await primaryKey(c, table)
    const list = cols.map((col) => pg_ident(rename[`${table}.${col}`] ?? col))
    const { rows } = await c.query(
      `select count(*)::int as rows,
              coalesce(md5(string_agg(row_text, E'\\n' order by k)), '') as checksum
         from (select (${pk.map(pg_ident).join(", '|', ")})::text as k,
                      concat_ws('|', ${list.map((l) => `coalesce(${l}::text, '<null>')`).join(', ')}) as row_text
                 from public.${pg_ident(table)}) s`,
    )
    out[table] = rows[0]
  }
  return out
}

function pg_ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}
