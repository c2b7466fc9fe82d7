--! Previous: sha1:ccc941f3e22ebc81e729c014c0de156ad5f55b60
--! Hash: sha1:e1f03f27b96c60d997a2551f4445228bc46a24c8
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_conv_id_timestamp', 'public.api_requests', '(conversation_id, "timestamp")');

select migration_hooks.ensure_index('idx_subtask_seq', 'public.api_requests', '(conversation_id, "timestamp")
  where branch_id like ''subtask_%''');
