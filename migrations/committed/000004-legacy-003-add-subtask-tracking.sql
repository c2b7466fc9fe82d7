--! Previous: sha1:6d640a91e605435e23c4a88acaae0c1f3bf252e9
--! Hash: sha1:107ecf0e6acbe01d015704fc5001d015fe47d4d9
--! Message: legacy 003 add subtask tracking

-- legacy 003 add-subtask-tracking: columns and indexes for Task-tool sub-tasks.
--
-- The data steps (extracting Task invocations, linking sub-task conversations) are
-- logic-heavy and batched: they run in the hooks (hooks/backfills/task-invocations.ts and
-- subtask-links.ts), not here.

select migration_hooks.add_missing_columns('public.api_requests',
  array['parent_task_request_id uuid', 'is_subtask boolean default false', 'task_tool_invocation jsonb']);

do $$
begin
  if not exists (
    select 1 from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
     where c.conrelid = 'public.api_requests'::regclass and c.contype = 'f'
       and a.attname = 'parent_task_request_id'
  ) then
    -- NOT VALID: no scan under the lock; validated at once on an empty table, else by the
    -- online schema step without blocking writes.
    alter table public.api_requests
      add constraint api_requests_parent_task_request_id_fkey
      foreign key (parent_task_request_id) references public.api_requests (request_id) not valid;
    if not migration_hooks.table_has_rows('public.api_requests') then
      alter table public.api_requests validate constraint api_requests_parent_task_request_id_fkey;
    end if;
  end if;
end $$;

select migration_hooks.ensure_index('idx_requests_parent_task_request_id', 'public.api_requests', '(parent_task_request_id)');
select migration_hooks.ensure_index('idx_requests_is_subtask', 'public.api_requests', '(is_subtask)');
select migration_hooks.ensure_index('idx_requests_task_tool_invocation_gin', 'public.api_requests', 'using gin (task_tool_invocation)
  where task_tool_invocation is not null');

comment on column public.api_requests.parent_task_request_id is 'For a sub-task request: the request whose response called the Task tool.';
comment on column public.api_requests.is_subtask is 'True for every request of a sub-task conversation.';
comment on column public.api_requests.task_tool_invocation is 'The response''s Task tool calls: [{id, name, input, linked_conversation_id?}].';
