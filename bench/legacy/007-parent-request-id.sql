-- Legacy 007's data step, re-written from docs/legacy-schema.md for MEASUREMENT
-- ONLY (bench/measure-linking.ts): parent_request_id for rows whose parent_message_hash equals
-- another row's current_message_hash in the same train and conversation — one UPDATE … FROM
-- join over the whole table, in one transaction. With several candidates (a retried request
-- repeats a hash) the row joined last wins, arbitrarily.
begin;

update api_requests c
set parent_request_id = p.request_id
from api_requests p
where c.parent_message_hash = p.current_message_hash
  and c.train_id = p.train_id
  and c.conversation_id = p.conversation_id
  and c.request_id <> p.request_id
  and c.parent_request_id is null;

commit;
