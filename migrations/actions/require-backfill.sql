-- migration_hooks.require_backfill(name, min_version): the finalize guard of a later migration.
--
-- Installed before every migrate that has pending migrations (.gmrc beforeAllMigrations, and
-- db:migrate's schema step through the same action), so a committed migration may call it:
--
--   select migration_hooks.require_backfill('system-hash');
--
-- It returns when the backfill is done (at min_version or later), or when there is nothing to
-- backfill (no api_requests rows: a fresh or shadow database). Otherwise it raises, which
-- rolls back the migration that called it: nothing of that migration is applied, and the
-- message says how far the backfill is and which command finishes it. See
-- migrations/CONVENTIONS.md, "Finalizing a backfill".
--
-- Idempotent; it lives in the hooks' schema, next to the ledger it reads.
create schema if not exists migration_hooks;

create or replace function migration_hooks.require_backfill(backfill text, min_version integer default 1)
returns void
language plpgsql
-- Pinned: nothing another role plants in a schema on the search_path can stand in for the
-- catalog functions or the tables used here.
set search_path = pg_catalog, pg_temp
as $fn$
declare
  recorded boolean := false;
  n bigint;
  entry record;
  situation text;
begin
  if to_regclass('public.api_requests') is null or not exists (select 1 from public.api_requests limit 1) then
    return; -- nothing to backfill
  end if;
  if to_regclass('migration_hooks.backfills') is not null then
    execute 'select state, version, rows_changed, step, step_done, step_total, last_error
               from migration_hooks.backfills where name = $1'
      into entry using backfill;
    get diagnostics n = row_count; -- EXECUTE does not set FOUND
    recorded := n > 0;
  end if;
  if recorded then
    if entry.state = 'done' and entry.version >= min_version then
      return;
    end if;
  end if;
  -- IF, not CASE: a CASE expression reads every field of `entry`, assigned or not.
  if not recorded then
    situation := 'it has never run on this database';
  elsif entry.state = 'done' then
    situation := format('it finished at version %s, and this migration needs version %s', entry.version, min_version);
  elsif entry.state = 'failed' then
    situation := format('it failed: %s', coalesce(entry.last_error, 'no error recorded'));
  else
    situation := format('it is %s%s, %s rows changed so far', entry.state,
                        case when entry.step_total > 0
                             then format(' at %s%% of step %s', least(100, floor(100.0 * coalesce(entry.step_done, 0) / entry.step_total)), coalesce(entry.step, '(first)'))
                             else '' end,
                        entry.rows_changed);
  end if;
  raise exception using
    errcode = 'P0001',
    message = format('This migration needs the backfill "%s" to be complete, and %s. Nothing of this migration was applied. '
                     'Run `npm run db:backfill` until `npm run db:status` shows it done (it resumes where it stopped), then migrate again.',
                     backfill, situation),
    hint = 'Run `npm run db:backfill` until `npm run db:status` shows it done (it resumes where it stopped), then migrate again.';
end
$fn$;

comment on function migration_hooks.require_backfill(text, integer) is
  'Finalize guard: raises unless the named backfill is done (or there is nothing to backfill). See migrations/CONVENTIONS.md.';
