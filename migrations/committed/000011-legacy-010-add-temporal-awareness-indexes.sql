--! Previous: sha1:416267c6d283df71208f46a00f27b603559fd696
--! Hash: sha1:560df8b32e42591102588075e97e915e893067fb
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_conv_id_timestamp', 'public.api_requests', '(conversation_id, "timestamp")');

select migration_hooks.ensure_index('idx_subtask_seq', 'public.api_requests', '(conversation_id, "timestamp")
  where branch_id like ''subtask_%''');
