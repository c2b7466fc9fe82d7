--! Previous: sha1:26d4106eaf1094ee5fefb1f8b77605a1b389b49a
--! Hash: sha1:f51d7e05fd7123f74e17ea6c575e0005280c4c35
--! Message: legacy 004 optimize conversation window functions

-- legacy 004 optimize-conversation-window-functions.
-- The ANALYZE runs in the hooks.

create index if not exists idx_requests_conversation_timestamp_id
  on public.api_requests (conversation_id, "timestamp" desc, request_id desc)
  where conversation_id is not null;

create index if not exists idx_requests_conversation_subtask
  on public.api_requests (conversation_id, is_subtask, "timestamp", request_id)
  where conversation_id is not null;

-- Kept for convergence with existing databases although it duplicates the primary key.
create index if not exists idx_requests_request_id on public.api_requests (request_id);

-- Legacy 002's partial index, superseded by the two above.
drop index if exists public.idx_requests_conversation_timestamp;
