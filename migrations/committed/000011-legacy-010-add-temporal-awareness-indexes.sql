--! Previous: sha1:cfd995b27277425395a7aca898cbd2466cfaf51f
--! Hash: sha1:128006140580c58477ab07f6c45d9ce17d65dcef
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_conv_id_timestamp', 'public.api_requests', '(conversation_id, "timestamp")');

select migration_hooks.ensure_index('idx_subtask_seq', 'public.api_requests', '(conversation_id, "timestamp")
  where branch_id like ''subtask_%''');
