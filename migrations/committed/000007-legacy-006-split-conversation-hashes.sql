--! Previous: sha1:6ba15edc4aeae59349a31147224510d3e285193d
--! Hash: sha1:2361f7f0abeeb4fa0f66f06d8e6e3018db473466
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

select migration_hooks.add_missing_columns('public.api_requests', array['system_hash varchar(64)']);

select migration_hooks.ensure_index('idx_api_requests_system_hash', 'public.api_requests', '(system_hash)');

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
