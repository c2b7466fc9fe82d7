--! Previous: sha1:62e1d1ecad8cd07da8709c5672a8e95435005c7b
--! Hash: sha1:4d7be04300dffea78d4d126cd8b71c7968a31ec9
--! Message: legacy 012 train id migration

-- legacy 012 train-id-migration.
--
-- Legacy 012 renamed `domain` to `train_id` in api_requests, analysis_audit_log and the
-- hourly_stats view, renamed four indexes, then refreshed hourly_stats CONCURRENTLY — which
-- always failed (no unique index on the view) and rolled the whole rename back. In this chain
-- the renames happen where each object is first created (migrations for legacy 000, 008 and
-- 011), so that every later migration can use the final name, and 000 gives the view its
-- unique index. What remains here is a guard that the outcome holds, so a database that
-- somehow still has a `domain` column fails loudly instead of silently diverging. The
-- refresh itself runs in the hooks, after the backfills.

do $$
declare
  leftover text;
begin
  select string_agg(format('%I.%I', table_name, column_name), ', ') into leftover
    from information_schema.columns
   where table_schema = 'public' and column_name = 'domain'
     and table_name in ('api_requests', 'analysis_audit_log', 'hourly_stats');
  if leftover is not null then
    raise exception 'legacy column(s) % still present next to train_id; merge them by hand before migrating', leftover;
  end if;
  if not exists (
    select 1 from pg_index i
     where i.indrelid = to_regclass('public.hourly_stats') and i.indisunique and i.indpred is null
  ) then
    raise exception 'hourly_stats has no unique index, so it cannot be refreshed concurrently';
  end if;
end $$;
