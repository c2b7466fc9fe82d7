-- Legacy 008's data steps, re-written from docs/subtasks.md for MEASUREMENT ONLY
-- (bench/measure-linking.ts): sub-task rows move into their parent's conversation, then
-- subtask_N is numbered by ROW_NUMBER() over individual ROWS per parent — so a sub-task made
-- of three requests gets three different branches (the legacy defect). One transaction.
begin;

update api_requests s
set conversation_id = p.conversation_id
from api_requests p
where s.parent_task_request_id = p.request_id
  and s.is_subtask
  and s.conversation_id is distinct from p.conversation_id;

update api_requests a
set branch_id = 'subtask_' || n.rn
from (
  select request_id, row_number() over (partition by parent_task_request_id order by "timestamp") as rn
  from api_requests
  where is_subtask and parent_task_request_id is not null
) n
where a.request_id = n.request_id;

commit;
