--! Previous: sha1:9747bcbdfcb0f17e36c33a71b7d81a25472eaf5b
--! Hash: sha1:5edb9292f6d7e6cf0370c0110666af85729da1eb
--! Message: legacy 002 optimize conversation indexes

-- legacy 002 optimize-conversation-indexes.
--
-- Legacy defect fixed: the covering index names total_tokens, which only Docker-init
-- databases had, so 002 failed on every script-chain database. The application writes
-- total_tokens, so the column is added here first.
-- Not ported: 002's partial (conversation_id, timestamp) index, which legacy 004 drops again as
-- redundant; creating it only to drop it would make this migration undo 004 when re-run.
-- The ANALYZE runs in the hooks (hooks/run.ts), after the data steps.

select migration_hooks.add_missing_columns('public.api_requests', array['total_tokens integer default 0']);

select migration_hooks.ensure_index('idx_requests_conversation_detail', 'public.api_requests', '(conversation_id, "timestamp", request_id, train_id, model, total_tokens, branch_id)
  where conversation_id is not null');
