--! Previous: -
--! Hash: sha1:811d86468185bbc98da6341ab4e9bf38fbfcf933
--! Message: legacy 000 init database

-- legacy 000 init-database: api_requests, streaming_chunks, the hourly_stats view and
-- refresh_hourly_stats().
--
-- Every statement converges whatever it finds: an empty database, a "script chain"
-- database (train column still called `domain`, legacy 012 having failed), or a "Docker
-- init" database (final column names, other index names, no view). Nothing is dropped
-- except duplicate indexes and the derived hourly_stats view (see below).

-- How this chain changes the proxy's big tables (api_requests, streaming_chunks) without
-- blocking it, whatever their size: three helpers in the hooks' schema (not the
-- application's), used by every migration below.
--  * add_missing_columns(): ALTER TABLE only for the columns the catalog lacks. Even
--    `add column if not exists` takes an ACCESS EXCLUSIVE lock when it adds nothing.
--  * ensure_index() / drop_index(): a plain CREATE/DROP INDEX only while the table is empty
--    (a fresh database). On a table with rows the statement is queued in
--    migration_hooks.online_index_work, and the online schema step that runs right after the
--    migrations (scripts/lifecycle/online-schema.ts) runs it CONCURRENTLY: a plain build
--    would hold every INSERT and UPDATE for its whole duration. An index that exists under
--    the canonical name with another definition (a hand-made or older variant) is rebuilt
--    the same way: built anew beside it, then swapped in.
--  * ensure_check(): a check constraint with exactly the fresh build's definition, however
--    the database's own is spelled (a dump/restore deparses some differently); added NOT
--    VALID on a table with rows (a brief lock, no scan), validated at once on an empty one.
--  * Foreign keys are added NOT VALID on a table with rows as well. The online schema step
--    validates every NOT VALID constraint without blocking writes.
-- Definitions are compared as PostgreSQL itself deparses them, by building the wanted index
-- or check on an empty temporary copy of the table.
create schema if not exists migration_hooks;

create table if not exists migration_hooks.online_index_work (
  name text primary key,
  statement text not null,
  requested_at timestamptz not null default now(),
  -- For a rebuild: the index that the one `statement` builds replaces once it is valid.
  replaces text
);
comment on table migration_hooks.online_index_work is
  'Index builds and drops on tables with rows, left by the migrations to the online schema step (CONCURRENTLY).';

create or replace function migration_hooks.table_has_rows(tbl regclass) returns boolean
language plpgsql stable set search_path = pg_catalog, pg_temp as $fn$
declare
  found_row boolean;
begin
  execute format('select exists (select 1 from %s limit 1)', tbl) into found_row;
  return found_row;
end
$fn$;

create or replace function migration_hooks.add_missing_columns(tbl regclass, columns text[]) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  missing text[];
begin
  -- Each element is '<name> <type and default>'; only those whose name the catalog lacks.
  select array_agg('add column ' || c order by o) into missing
    from unnest(columns) with ordinality as u(c, o)
   where not exists (select 1 from pg_attribute a
                      where a.attrelid = tbl and a.attname = split_part(u.c, ' ', 1) and a.attnum > 0 and not a.attisdropped);
  if missing is not null then
    execute format('alter table %s %s', tbl, array_to_string(missing, ', '));
  end if;
end
$fn$;

-- An empty temporary table shaped like `tbl`, to build probes on (dropped at commit).
create or replace function migration_hooks.probe_table(tbl regclass) returns text
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
begin
  drop table if exists pg_temp.migration_hooks_probe;
  execute format('create temporary table migration_hooks_probe (like %s including defaults) on commit drop', tbl);
  return 'pg_temp.migration_hooks_probe';
end
$fn$;

-- "USING btree (col) WHERE …": an index definition without its name and table.
create or replace function migration_hooks.index_shape(def text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $fn$
  select substr(def, strpos(def, ' USING '))
$fn$;

-- The shape an index built with `spec` on `tbl` has.
create or replace function migration_hooks.wanted_index_shape(tbl regclass, spec text) returns text
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  probe text := migration_hooks.probe_table(tbl);
  shape text;
begin
  execute format('create index migration_hooks_probe_index on %s %s', probe, spec);
  shape := migration_hooks.index_shape(pg_get_indexdef('pg_temp.migration_hooks_probe_index'::regclass));
  drop table pg_temp.migration_hooks_probe;
  return shape;
end
$fn$;

create or replace function migration_hooks.ensure_index(index_name text, tbl regclass, spec text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  existing regclass := to_regclass(format('public.%I', index_name));
  rebuild_name text := left(index_name, 52) || '_rebuilding';
begin
  if existing is not null then
    if migration_hooks.index_shape(pg_get_indexdef(existing)) = migration_hooks.wanted_index_shape(tbl, spec) then
      return;
    end if;
    -- Under the canonical name, but another definition: rebuild it.
    if migration_hooks.table_has_rows(tbl) then
      insert into migration_hooks.online_index_work (name, statement, replaces)
      values (rebuild_name, format('create index concurrently if not exists %I on %s %s', rebuild_name, tbl, spec), index_name)
      on conflict (name) do update set statement = excluded.statement, replaces = excluded.replaces;
      return;
    end if;
    execute format('drop index public.%I', index_name);
  end if;
  if migration_hooks.table_has_rows(tbl) then
    insert into migration_hooks.online_index_work (name, statement)
    values (index_name, format('create index concurrently if not exists %I on %s %s', index_name, tbl, spec))
    on conflict (name) do update set statement = excluded.statement, replaces = null;
  else
    execute format('create index %I on %s %s', index_name, tbl, spec);
  end if;
end
$fn$;

create or replace function migration_hooks.ensure_check(tbl regclass, constraint_name text, expr text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  probe text := migration_hooks.probe_table(tbl);
  wanted text;
  current_def text;
begin
  execute format('alter table %s add constraint migration_hooks_probe_check check (%s)', probe, expr);
  select pg_get_constraintdef(oid) into wanted from pg_constraint
   where conrelid = 'pg_temp.migration_hooks_probe'::regclass and conname = 'migration_hooks_probe_check';
  drop table pg_temp.migration_hooks_probe;
  select pg_get_constraintdef(oid) into current_def from pg_constraint where conrelid = tbl and conname = constraint_name;
  -- NOT VALID is a state, not another definition.
  if replace(current_def, ' NOT VALID', '') = wanted then
    return;
  end if;
  if current_def is not null then
    execute format('alter table %s drop constraint %I', tbl, constraint_name);
  end if;
  execute format('alter table %s add constraint %I check (%s) not valid', tbl, constraint_name, expr);
  if not migration_hooks.table_has_rows(tbl) then
    execute format('alter table %s validate constraint %I', tbl, constraint_name);
  end if;
end
$fn$;

create or replace function migration_hooks.drop_index(index_name text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  tbl regclass;
begin
  select i.indrelid::regclass into tbl from pg_index i where i.indexrelid = to_regclass(format('public.%I', index_name));
  if tbl is null then
    return;
  end if;
  if migration_hooks.table_has_rows(tbl) then
    insert into migration_hooks.online_index_work (name, statement)
    values (index_name, format('drop index concurrently if exists public.%I', index_name))
    on conflict (name) do update set statement = excluded.statement;
  else
    execute format('drop index public.%I', index_name);
  end if;
end
$fn$;

-- Legacy 012 renamed `domain` to `train_id` but always failed, so script-chain databases still
-- have `domain`. We rename first, so that the whole chain can use the final name.
do $$
begin
  if exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'api_requests' and column_name = 'domain')
     and not exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'api_requests' and column_name = 'train_id') then
    alter table public.api_requests rename column domain to train_id;
  end if;
  -- PostgreSQL 18 names NOT NULL constraints after their column, and a renamed column keeps
  -- the old name: make it the one a fresh build has.
  if exists (select 1 from pg_constraint where conrelid = to_regclass('public.api_requests') and conname = 'api_requests_domain_not_null') then
    alter table public.api_requests rename constraint api_requests_domain_not_null to api_requests_train_id_not_null;
  end if;
end $$;

create table if not exists public.api_requests (
  request_id uuid primary key,
  "timestamp" timestamptz not null,
  train_id varchar(255) not null,
  method varchar(10) not null,
  path varchar(1024) not null,
  headers jsonb,
  body jsonb,
  request_type varchar(50),
  api_key_id varchar(50),
  model varchar(100),
  ip_address varchar(45),
  response_status integer,
  response_headers jsonb,
  response_body jsonb,
  response_streaming boolean default false,
  duration_ms integer,
  input_tokens integer default 0,
  output_tokens integer default 0,
  cache_creation_input_tokens integer default 0,
  cache_read_input_tokens integer default 0,
  usage_data jsonb,
  tool_call_count integer default 0,
  error text,
  completed_at timestamptz,
  created_at timestamptz default now()
);

-- Index names: the script chain's names are the canonical ones. A Docker-init database has
-- the same indexes under other names: rename them, or drop them when the canonical index
-- already exists (a duplicate index holds no data).
do $$
declare
  pair text[];
begin
  foreach pair slice 1 in array array[
    ['idx_api_requests_domain', 'idx_api_requests_train_id'],
    ['idx_requests_train_id', 'idx_api_requests_train_id'],
    ['idx_requests_timestamp', 'idx_api_requests_timestamp'],
    ['idx_requests_model', 'idx_api_requests_model'],
    ['idx_requests_request_type', 'idx_api_requests_request_type']
  ] loop
    if to_regclass('public.' || pair[1]) is not null then
      if to_regclass('public.' || pair[2]) is null then
        execute format('alter index public.%I rename to %I', pair[1], pair[2]);
      else
        perform migration_hooks.drop_index(pair[1]);
      end if;
    end if;
  end loop;
end $$;

select migration_hooks.ensure_index('idx_api_requests_train_id', 'public.api_requests', '(train_id)');
select migration_hooks.ensure_index('idx_api_requests_timestamp', 'public.api_requests', '("timestamp")');
select migration_hooks.ensure_index('idx_api_requests_model', 'public.api_requests', '(model)');
select migration_hooks.ensure_index('idx_api_requests_request_type', 'public.api_requests', '(request_type)');

create table if not exists public.streaming_chunks (
  id serial primary key,
  request_id uuid not null references public.api_requests (request_id) on delete cascade,
  chunk_index integer not null,
  "timestamp" timestamptz not null,
  data text not null,
  token_count integer default 0,
  created_at timestamptz default now(),
  unique (request_id, chunk_index)
);

-- Docker-init's idx_chunks_request_id (request_id) is covered by the (request_id, chunk_index)
-- index below and by the unique constraint.
select migration_hooks.drop_index('idx_chunks_request_id');
select migration_hooks.ensure_index('idx_streaming_chunks_request_id', 'public.streaming_chunks', '(request_id, chunk_index)');

-- hourly_stats holds only derived data, so it is safe to rebuild. Script-chain databases have
-- it with a `domain` column; Docker-init ones do not have it. If the existing definition is
-- not exactly ours, drop it and create it again (refreshed by the hooks afterwards).
create or replace temporary view hourly_stats_expected as
  select date_trunc('hour', r."timestamp") as hour,
         r.train_id,
         r.model,
         count(*) as request_count,
         sum(r.input_tokens) as total_input_tokens,
         sum(r.output_tokens) as total_output_tokens,
         sum(r.cache_creation_input_tokens) as total_cache_creation_tokens,
         sum(r.cache_read_input_tokens) as total_cache_read_tokens,
         avg(r.duration_ms) as avg_response_time,
         sum(r.tool_call_count) as total_tool_calls
    from public.api_requests r
   where r."timestamp" > now() - interval '7 days'
   group by date_trunc('hour', r."timestamp"), r.train_id, r.model;

do $$
begin
  if to_regclass('public.hourly_stats') is not null
     and pg_get_viewdef(to_regclass('public.hourly_stats')) is distinct from pg_get_viewdef('hourly_stats_expected'::regclass) then
    drop materialized view public.hourly_stats;
  end if;
  if to_regclass('public.hourly_stats') is null then
    -- WITH NO DATA: filling it scans api_requests, and this transaction may hold a lock on
    -- api_requests from the ALTER TABLEs above; the hooks populate it right after the migrations.
    execute 'create materialized view public.hourly_stats as '
            || rtrim(pg_get_viewdef('hourly_stats_expected'::regclass), '; ') || ' with no data';
  end if;
end $$;

drop view hourly_stats_expected;

create index if not exists idx_hourly_stats_hour_train on public.hourly_stats (hour desc, train_id);
drop index if exists public.idx_hourly_stats_hour_domain;
-- Legacy defect: without a unique index REFRESH ... CONCURRENTLY always failed (and with it
-- legacy 012). One row per (hour, train, model) is what the view's GROUP BY yields.
create unique index if not exists idx_hourly_stats_unique on public.hourly_stats (hour, train_id, model);

create or replace function public.refresh_hourly_stats() returns void
language plpgsql
-- Pinned: an object another role creates in a schema on the caller's path cannot stand in.
set search_path = pg_catalog, public
as $$
begin
  -- CONCURRENTLY keeps the dashboard readable during the refresh; it needs a populated view.
  if (select ispopulated from pg_matviews where schemaname = 'public' and matviewname = 'hourly_stats') then
    refresh materialized view concurrently public.hourly_stats;
  else
    refresh materialized view public.hourly_stats;
  end if;
end;
$$;

-- The column changes come last: an ALTER TABLE holds its exclusive lock on api_requests
-- until this migration commits, so everything slower (index probes, the view) runs before it
-- and the proxy's writes wait only for the commit itself.
-- The union of both legacy end-states: script-chain databases lack the Docker-init columns
-- (api_key_hash, first_token_ms), Docker-init databases lack the script-chain ones
-- (api_key_id, ip_address, completed_at). Nothing is dropped.
select migration_hooks.add_missing_columns('public.api_requests',
  array['api_key_id varchar(50)', 'api_key_hash varchar(50)', 'ip_address varchar(45)', 'first_token_ms integer', 'completed_at timestamptz']);

-- Docker-init created `path varchar(255)` and a nullable `headers`; the union keeps the wider
-- type and the nullability (a NOT NULL would reject rows that exist there). Widening a
-- varchar needs no table rewrite; both steps only run when needed, to take no lock otherwise.
do $$
begin
  if (select character_maximum_length from information_schema.columns
      where table_schema = 'public' and table_name = 'api_requests' and column_name = 'path') < 1024 then
    alter table public.api_requests alter column path type varchar(1024);
  end if;
  if (select is_nullable from information_schema.columns
      where table_schema = 'public' and table_name = 'api_requests' and column_name = 'headers') = 'NO' then
    alter table public.api_requests alter column headers drop not null;
  end if;
end $$;

-- The application always writes token counts; a default of 0 (as Docker-init had) keeps
-- rows inserted before the response arrives summable.
do $$
begin
  if exists (select 1 from information_schema.columns
              where table_schema = 'public' and table_name = 'api_requests' and column_name in ('input_tokens', 'output_tokens')
                and column_default is distinct from '0') then
    alter table public.api_requests
      alter column input_tokens set default 0,
      alter column output_tokens set default 0;
  end if;
end $$;

comment on table public.api_requests is 'Every request proxied to the LLM API, with its response.';
comment on table public.streaming_chunks is 'Server-sent event chunks of streamed responses.';
comment on materialized view public.hourly_stats is 'Per hour, train and model totals over the last 7 days, for the dashboard.';
comment on column public.api_requests.train_id is 'Train (project) the request belongs to.';
comment on column public.api_requests.request_type is 'inference, query_evaluation, quota, …';
comment on column public.api_requests.tool_call_count is 'Number of tool_use blocks in the response.';
comment on column public.api_requests.cache_creation_input_tokens is 'Input tokens written to the prompt cache.';
comment on column public.api_requests.cache_read_input_tokens is 'Input tokens read from the prompt cache.';
comment on column public.api_requests.usage_data is 'The usage object of the API response, as returned.';
comment on column public.api_requests.api_key_id is 'Client API key identifier (script-chain databases; kept, the application now writes api_key_hash).';
comment on column public.api_requests.api_key_hash is 'Hash of the client API key.';
comment on column public.api_requests.ip_address is 'Client address (script-chain databases; kept for history).';
comment on column public.api_requests.completed_at is 'When the response completed (script-chain databases; kept for history).';
comment on column public.api_requests.first_token_ms is 'Milliseconds until the first streamed token.';
