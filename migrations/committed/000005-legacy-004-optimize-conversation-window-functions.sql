--! Previous: sha1:47480958555da17bf1f2ecd295aa672cb7e263b7
--! Hash: sha1:fc96e4a1c44488cac4095c087531906543611a86
--! Message: legacy 004 optimize conversation window functions

-- legacy 004 optimize-conversation-window-functions.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_requests_conversation_timestamp_id', 'public.api_requests', '(conversation_id, "timestamp" desc, request_id desc)
  where conversation_id is not null');

select migration_hooks.ensure_index('idx_requests_conversation_subtask', 'public.api_requests', '(conversation_id, is_subtask, "timestamp", request_id)
  where conversation_id is not null');

-- Kept for convergence with existing databases although it duplicates the primary key.
select migration_hooks.ensure_index('idx_requests_request_id', 'public.api_requests', '(request_id)');

-- Legacy 002's partial index, superseded by the two above.
select migration_hooks.drop_index('idx_requests_conversation_timestamp');
