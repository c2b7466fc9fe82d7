--! Previous: sha1:953f6c7d2743add08716f6df69531174ae1610d7
--! Hash: sha1:e3e24406c7775ee0272bd6cac86b2c164d31d510
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_conv_id_timestamp', 'public.api_requests', '(conversation_id, "timestamp")');

select migration_hooks.ensure_index('idx_subtask_seq', 'public.api_requests', '(conversation_id, "timestamp")
  where branch_id like ''subtask_%''');
