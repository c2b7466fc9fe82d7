--! Previous: sha1:991e8d277f13194f9f243820de950a16fb35d0d6
--! Hash: sha1:118cf2480f118a31f1080e5e0af6616b4efd12f1
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

select migration_hooks.add_missing_columns('public.api_requests', array['system_hash varchar(64)']);

select migration_hooks.ensure_index('idx_api_requests_system_hash', 'public.api_requests', '(system_hash)');

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
