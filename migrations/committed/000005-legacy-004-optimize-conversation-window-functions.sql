--! Previous: sha1:15415494bf63151f94a76d2904577aa9487fa651
--! Hash: sha1:e3a89ad59c8a9e2757128674f2f60829670e8676
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
