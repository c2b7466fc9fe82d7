--! Previous: sha1:37341e9f70f6132d533b470630b34b132690ccab
--! Hash: sha1:4b4d3730376d5be09c9dfa32654042dadfb8a191
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

create index if not exists idx_api_requests_conv_id_timestamp
  on public.api_requests (conversation_id, "timestamp");

create index if not exists idx_subtask_seq
  on public.api_requests (conversation_id, "timestamp")
  where branch_id like 'subtask_%';
