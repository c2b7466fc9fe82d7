--! Previous: sha1:63cbe673f31e8ce1d04f7b613a1c8159181c06f2
--! Hash: sha1:30f65d45060aec0522fd6ae1bb36e1600ee873f2
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

select migration_hooks.add_missing_columns('public.api_requests', array['system_hash varchar(64)']);

select migration_hooks.ensure_index('idx_api_requests_system_hash', 'public.api_requests', '(system_hash)');

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
