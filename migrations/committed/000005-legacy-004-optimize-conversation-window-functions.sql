--! Previous: sha1:9bc9b43da65fbe20c0b72503fffd4a9e3faab38f
--! Hash: sha1:d5b414879b3e927def7302ed65f503bf86bb7f85
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
