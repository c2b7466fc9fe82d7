--! Previous: sha1:811fc7f8ba5f727400b04237fc5acd4ef1360948
--! Hash: sha1:26d4106eaf1094ee5fefb1f8b77605a1b389b49a
--! Message: legacy 003 add subtask tracking

-- legacy 003 add-subtask-tracking: columns and indexes for Task-tool sub-tasks.
--
-- The data steps (extracting Task invocations, linking sub-task conversations) are
-- logic-heavy and batched: they run in the hooks (hooks/backfills/task-invocations.ts and
-- subtask-links.ts), not here.

alter table public.api_requests
  add column if not exists parent_task_request_id uuid,
  add column if not exists is_subtask boolean default false,
  add column if not exists task_tool_invocation jsonb;

do $$
begin
  if not exists (
    select 1 from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
     where c.conrelid = 'public.api_requests'::regclass and c.contype = 'f'
       and a.attname = 'parent_task_request_id'
  ) then
    alter table public.api_requests
      add constraint api_requests_parent_task_request_id_fkey
      foreign key (parent_task_request_id) references public.api_requests (request_id);
  end if;
end $$;

create index if not exists idx_requests_parent_task_request_id on public.api_requests (parent_task_request_id);
create index if not exists idx_requests_is_subtask on public.api_requests (is_subtask);
create index if not exists idx_requests_task_tool_invocation_gin
  on public.api_requests using gin (task_tool_invocation)
  where task_tool_invocation is not null;

comment on column public.api_requests.parent_task_request_id is 'For a sub-task request: the request whose response called the Task tool.';
comment on column public.api_requests.is_subtask is 'True for every request of a sub-task conversation.';
comment on column public.api_requests.task_tool_invocation is 'The response''s Task tool calls: [{id, name, input, linked_conversation_id?}].';
