--! Previous: sha1:fb13c6c599377356e67651a0f98a0d0b3c69388b
--! Hash: sha1:e80b3fef308f9dc830ffa4290a161bec5574de7d
--! Message: legacy 008 subtask updates and task indexes

-- legacy 008 subtask-updates-and-task-indexes: indexes for Task-tool queries.
--
-- Legacy 008 also moved sub-task rows into their parent's conversation and numbered
-- subtask_N per *row*; the hooks do this per sub-task conversation instead
-- (hooks/backfills/subtask-links.ts, see the sub-task spec).

create index if not exists idx_api_requests_response_body_task
  on public.api_requests using gin (response_body)
  where response_body is not null;

do $$
begin
  if to_regclass('public.idx_api_requests_domain_timestamp_response') is not null then
    if to_regclass('public.idx_api_requests_train_timestamp_response') is null then
      alter index public.idx_api_requests_domain_timestamp_response rename to idx_api_requests_train_timestamp_response;
    else
      drop index public.idx_api_requests_domain_timestamp_response;
    end if;
  end if;
end $$;

create index if not exists idx_api_requests_train_timestamp_response
  on public.api_requests (train_id, "timestamp" desc)
  where response_body is not null;

-- Ported as is for convergence with existing databases. Known legacy defect: jsonb::text
-- prints "name": "Task" with a space, so this predicate never matches and the index stays
-- empty (and therefore costs nothing).
create index if not exists idx_api_requests_task_name
  on public.api_requests ((response_body::text))
  where (response_body::text) like '%"name":"Task"%';
