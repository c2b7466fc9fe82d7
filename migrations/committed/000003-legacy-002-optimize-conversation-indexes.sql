--! Previous: sha1:c326958e6b80f697e81dac64970e92f2400ec7f6
--! Hash: sha1:811fc7f8ba5f727400b04237fc5acd4ef1360948
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
