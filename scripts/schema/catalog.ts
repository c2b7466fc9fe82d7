/**
 * A deterministic, reviewable text rendering of the application schema, read from the
 * PostgreSQL catalog (no pg_dump needed: `npm ci` installs everything this uses).
 *
 * It is what schema/schema.sql contains and what the tests compare: a fresh build, a
 * re-run of every migration and every converged legacy database must all render to the same
 * text. Covered: enum types, tables with columns (type, default, nullability), constraints,
 * indexes, views and materialized views (definition), functions, triggers and comments.
 *
 * Deliberate choice: columns are listed by name, not by position. A legacy database that
 * gained a column later has it at another position, and only a table rewrite could change
 * that; no query of the application depends on column order.
 */
import type pg from 'pg'

/** Schemas that belong to the tools, not to the application. */
export const EXCLUDED_SCHEMAS = ['graphile_migrate', 'migration_hooks']

type Q = Pick<pg.ClientBase, 'query'>

async function rows<T extends Record<string, unknown>>(client: Q, sql: string): Promise<T[]> {
  return (await client.query(sql)).rows as T[]
}

const APP_SCHEMA = `n.nspname = 'public'`

export async function renderSchema(client: Q): Promise<string> {
  const out: string[] = [
    '-- Generated from the database catalog by scripts/schema/dump-schema.ts. Do not edit:',
    '-- run `npm run db:schema` (or commit a migration) to regenerate.',
    '',
  ]
  const section = (title: string, lines: string[]) => {
    if (!lines.length) return
    out.push(`-- ${title}`, ...lines, '')
  }

  const enums = await rows<{ name: string; labels: string[] }>(
    client,
    `select format('%I.%I', n.nspname, t.typname) as name,
            array_agg(e.enumlabel::text order by e.enumsortorder) as labels
       from pg_type t join pg_namespace n on n.oid = t.typnamespace
       join pg_enum e on e.enumtypid = t.oid
      where ${APP_SCHEMA}
      group by 1 order by 1`,
  )
  section(
    'Enum types',
    enums.map((e) => `CREATE TYPE ${e.name} AS ENUM (${e.labels.map((l) => `'${l.replace(/'/g, "''")}'`).join(', ')});`),
  )

  const columns = await rows<{ tbl: string; col: string; type: string; notnull: boolean; def: string | null }>(
    client,
    `select format('%I.%I', n.nspname, c.relname) as tbl, quote_ident(a.attname) as col,
            format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as notnull,
            pg_get_expr(d.adbin, d.adrelid) as def
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
      where ${APP_SCHEMA} and c.relkind in ('r', 'p')
      order by 1, a.attname`,
  )
  const tables = new Map<string, string[]>()
  for (const c of columns) {
    const line = `  ${c.col} ${c.type}${c.def ? ` DEFAULT ${c.def}` : ''}${c.notnull ? ' NOT NULL' : ''}`
    tables.set(c.tbl, [...(tables.get(c.tbl) ?? []), line])
  }
  section(
    'Tables (columns in name order)',
    [...tables].flatMap(([t, cols]) => [`CREATE TABLE ${t} (`, cols.join(',\n'), ');']),
  )

  const constraints = await rows<{ line: string }>(
    client,
    `select format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s;', n.nspname, c.relname, k.conname,
                   pg_get_constraintdef(k.oid)) as line
       from pg_constraint k join pg_class c on c.oid = k.conrelid
       join pg_namespace n on n.oid = c.relnamespace
      where ${APP_SCHEMA}
      order by c.relname, k.conname`,
  )
  section(
    'Constraints',
    constraints.map((r) => r.line),
  )

  const views = await rows<{ line: string }>(
    client,
    `select format('CREATE %sVIEW %I.%I AS%s', case c.relkind when 'm' then 'MATERIALIZED ' else '' end,
                   n.nspname, c.relname, rtrim(pg_get_viewdef(c.oid), ';')) || ';' as line
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where ${APP_SCHEMA} and c.relkind in ('v', 'm')
      order by c.relname`,
  )
  section(
    'Views',
    views.map((r) => r.line),
  )

  const indexes = await rows<{ line: string }>(
    client,
    `select pg_get_indexdef(i.indexrelid) || ';' as line
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
       join pg_class c on c.oid = i.indrelid
       join pg_namespace n on n.oid = c.relnamespace
      where ${APP_SCHEMA}
      order by c.relname, ic.relname`,
  )
  section(
    'Indexes',
    indexes.map((r) => r.line),
  )

  const invalid = await rows<{ name: string }>(
    client,
    `select ic.relname as name from pg_index i join pg_class ic on ic.oid = i.indexrelid
       join pg_namespace n on n.oid = ic.relnamespace
      where ${APP_SCHEMA} and not i.indisvalid order by 1`,
  )
  section(
    'INVALID indexes (an interrupted concurrent build)',
    invalid.map((r) => `-- ${r.name}`),
  )

  const functions = await rows<{ line: string }>(
    client,
    `select pg_get_functiondef(p.oid) || ';' as line
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${APP_SCHEMA} and p.prokind = 'f'
      order by p.proname, pg_get_function_identity_arguments(p.oid)`,
  )
  section(
    'Functions',
    functions.map((r) => r.line.trimEnd()),
  )

  const triggers = await rows<{ line: string }>(
    client,
    `select pg_get_triggerdef(t.oid) || ';' as line
       from pg_trigger t join pg_class c on c.oid = t.tgrelid
       join pg_namespace n on n.oid = c.relnamespace
      where ${APP_SCHEMA} and not t.tgisinternal
      order by c.relname, t.tgname`,
  )
  section(
    'Triggers',
    triggers.map((r) => r.line),
  )

  const comments = await rows<{ line: string }>(
    client,
    `select case when d.objsubid = 0
                  then format('COMMENT ON %s %I.%I IS %L;',
                              case c.relkind when 'm' then 'MATERIALIZED VIEW' when 'v' then 'VIEW' else 'TABLE' end,
                              n.nspname, c.relname, d.description)
                  else format('COMMENT ON COLUMN %I.%I.%I IS %L;', n.nspname, c.relname, a.attname, d.description)
             end as line
       from pg_description d
       join pg_class c on c.oid = d.objoid and d.classoid = 'pg_class'::regclass
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_attribute a on a.attrelid = c.oid and a.attnum = d.objsubid
      where ${APP_SCHEMA}
      order by c.relname, d.objsubid = 0 desc, a.attname`,
  )
  section(
    'Comments',
    comments.map((r) => r.line),
  )

  return out.join('\n').trimEnd() + '\n'
}
