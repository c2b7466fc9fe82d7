--! Previous: sha1:8561ec8bd2848e72bd7721447599da7c089c4d7e
--! Hash: sha1:6d640a91e605435e23c4a88acaae0c1f3bf252e9
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
