--! Previous: sha1:73355073dfca6806ebbc64aaeb9e7ce6426a1534
--! Hash: sha1:cc61434c22b96f091cf18deba2d07fbe1ec03985
--! Message: legacy 008 subtask updates and task indexes

-- legacy 008 subtask-updates-and-task-indexes: indexes for Task-tool queries.
--
-- Legacy 008 also moved sub-task rows into their parent's conversation and numbered
-- subtask_N per *row*; the hooks do this per sub-task conversation instead
-- (hooks/backfills/subtask-links.ts, see the sub-task spec).

select migration_hooks.ensure_index('idx_api_requests_response_body_task', 'public.api_requests', 'using gin (response_body)
  where response_body is not null');

do $$
begin
  if to_regclass('public.idx_api_requests_domain_timestamp_response') is not null then
    if to_regclass('public.idx_api_requests_train_timestamp_response') is null then
      alter index public.idx_api_requests_domain_timestamp_response rename to idx_api_requests_train_timestamp_response;
    else
      perform migration_hooks.drop_index('idx_api_requests_domain_timestamp_response');
    end if;
  end if;
end $$;

select migration_hooks.ensure_index('idx_api_requests_train_timestamp_response', 'public.api_requests', '(train_id, "timestamp" desc)
  where response_body is not null');

-- Ported as is for convergence with existing databases. Known legacy defect: jsonb::text
-- prints "name": "Task" with a space, so this predicate never matches and the index stays
-- empty (and therefore costs nothing).
select migration_hooks.ensure_index('idx_api_requests_task_name', 'public.api_requests', '((response_body::text))
  where response_body is not null and (response_body::text) like ''%"name":"Task"%''');
