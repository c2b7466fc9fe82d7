--! Previous: sha1:d41205ee5aff6f305161e4359c4baa5ca673688d
--! Hash: sha1:8441a9ff0dded0b5fdba5a8821f16a60db0870e6
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_conv_id_timestamp', 'public.api_requests', '(conversation_id, "timestamp")');

select migration_hooks.ensure_index('idx_subtask_seq', 'public.api_requests', '(conversation_id, "timestamp")
  where branch_id like ''subtask_%''');
