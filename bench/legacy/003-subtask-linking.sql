-- Legacy 003's data steps, re-written from docs/subtasks.md for MEASUREMENT ONLY
-- (bench/measure-linking.ts). This is the behaviour we replaced, defects included; it is never
-- run against a real database. Column names are the current ones (train_id, not domain).
--
-- One transaction, like the legacy script: every row it touches stays locked until the end.
begin;

-- 1. Task invocations in 003's own shape {id, name, prompt, description} (missing values
--    become ""), for rows where task_tool_invocation is NULL. Not the application's shape.
update api_requests r
set task_tool_invocation = (
  select jsonb_agg(jsonb_build_object(
           'id', coalesce(b.e->>'id', ''),
           'name', coalesce(b.e->>'name', ''),
           'prompt', coalesce(b.e->'input'->>'prompt', ''),
           'description', coalesce(b.e->'input'->>'description', '')) order by b.o)
  from jsonb_array_elements(r.response_body->'content') with ordinality b(e, o)
  where b.e->>'type' = 'tool_use' and b.e->>'name' = 'Task')
where r.task_tool_invocation is null
  and r.response_body @> '{"content": [{"type": "tool_use", "name": "Task"}]}';

-- 2. Link a conversation to a parent when its earliest row's first message (string content,
--    or the text of block 0 or block 1) equals one of the parent's prompts and it started
--    within 30 seconds after the parent's timestamp, in another conversation.
--    The earliest row is found with a correlated subquery per row; when several parents or
--    conversations match, UPDATE … FROM keeps an arbitrary one.
update api_requests s
set parent_task_request_id = m.parent_id,
    is_subtask = true
from (
  select f.conversation_id, p.request_id as parent_id
  from (
    select r.conversation_id, r."timestamp",
           case when jsonb_typeof(r.body->'messages'->0->'content') = 'string'
                then r.body->'messages'->0->>'content'
                else coalesce(r.body->'messages'->0->'content'->0->>'text',
                              r.body->'messages'->0->'content'->1->>'text') end as first_text
    from api_requests r
    where r.conversation_id is not null
      and r."timestamp" = (select min(r2."timestamp") from api_requests r2 where r2.conversation_id = r.conversation_id)
  ) f
  join api_requests p on p.task_tool_invocation is not null
  join lateral jsonb_array_elements(p.task_tool_invocation) t(e) on t.e->>'prompt' = f.first_text
  where f."timestamp" between p."timestamp" and p."timestamp" + interval '30 seconds'
    and p.conversation_id is distinct from f.conversation_id
) m
where s.conversation_id = m.conversation_id;

-- 3. Only invocation index 0 ever gets linked_conversation_id.
update api_requests p
set task_tool_invocation = jsonb_set(p.task_tool_invocation, '{0,linked_conversation_id}', to_jsonb(l.conversation_id::text))
from (select distinct parent_task_request_id, conversation_id from api_requests where parent_task_request_id is not null) l
where p.request_id = l.parent_task_request_id;

commit;
