/**
 * A legacy-like data set of any size for the soak drill: the script-chain fixture's
 * api_requests rows, copied `cycles` times with generate_series. Copy n is shifted n hours
 * later and gets its own ids — request ids a0000000-… become a<n in hex>-…, conversation ids
 * c0000000-… become c<n>-… (also inside JSON, e.g. legacy 003's linked_conversation_id), and
 * message hashes are re-derived per copy — so every copy is a self-contained replica of the
 * fixture's conversations, sub-tasks, branches and legacy quirks, with deterministic values.
 */
import type pg from 'pg'

export async function multiplyLegacyRows(client: pg.ClientBase, cycles: number): Promise<number> {
  await client.query(
    `do $$
     declare
       cols text;
       exprs text;
     begin
       select string_agg(format('%I', column_name), ', ' order by ordinal_position),
              string_agg(
                case
                  when column_name in ('current_message_hash', 'parent_message_hash') then
                    format('md5(b.%1$I || '':'' || g.n) || md5(g.n || '':'' || b.%1$I)', column_name)
                  when data_type in ('uuid', 'jsonb') then
                    format('replace(replace(b.%1$I::text, ''a0000000-'', ''a'' || p.x || ''-''), ''c0000000-'', ''c'' || p.x || ''-'')::%2$s',
                           column_name, data_type)
                  when data_type = 'timestamp with time zone' then format('b.%I + g.n * interval ''1 hour''', column_name)
                  else format('b.%I', column_name)
                end, ', ' order by ordinal_position)
         into cols, exprs
         from information_schema.columns
        where table_schema = 'public' and table_name = 'api_requests';
       execute format(
         'insert into public.api_requests (%s)
          select %s from (select * from public.api_requests) b
          cross join generate_series(1, ${Number(cycles)}) g(n)
          cross join lateral (select lpad(to_hex(g.n), 7, ''0'') as x) p',
         cols, exprs);
     end $$`,
  )
  const { rows } = await client.query(`select count(*)::int as n from api_requests`)
  return rows[0].n
}
