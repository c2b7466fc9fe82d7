--! Previous: sha1:3cd4ae7df93147ddc4d5ac702376bc14d2f5f946
--! Hash: sha1:a6632b62c1accf951970a6d3d2f58dd8dc0686ef
--! Message: legacy 010 add temporal awareness indexes

-- legacy 010 add-temporal-awareness-indexes.
-- The ANALYZE runs in the hooks.

create index if not exists idx_api_requests_conv_id_timestamp
  on public.api_requests (conversation_id, "timestamp");

create index if not exists idx_subtask_seq
  on public.api_requests (conversation_id, "timestamp")
  where branch_id like 'subtask_%';
