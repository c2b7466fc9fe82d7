--! Previous: sha1:b2ac9b9a951ee1118a33494af01cfd82b1e680c8
--! Hash: sha1:5db96624777358ba334be3d3c7f34ce1edfecf59
--! Message: legacy 002 optimize conversation indexes

-- legacy 002 optimize-conversation-indexes.
--
-- Legacy defect fixed: the covering index names total_tokens, which only Docker-init
-- databases had, so 002 failed on every script-chain database. The application writes
-- total_tokens, so the column is added here first.
-- Not ported: 002's partial (conversation_id, timestamp) index, which legacy 004 drops again as
-- redundant; creating it only to drop it would make this migration undo 004 when re-run.
-- The ANALYZE runs in the hooks (hooks/run.ts), after the data steps.

alter table public.api_requests
  add column if not exists total_tokens integer default 0;

create index if not exists idx_requests_conversation_detail
  on public.api_requests (conversation_id, "timestamp", request_id, train_id, model, total_tokens, branch_id)
  where conversation_id is not null;
