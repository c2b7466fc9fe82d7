--! Previous: sha1:107ecf0e6acbe01d015704fc5001d015fe47d4d9
--! Hash: sha1:0ccf32bb665440e1fe026b19c4363299ee1a7932
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
