--! Previous: sha1:0f3f34703b89b421e8b3363adfceb187088e9118
--! Hash: sha1:70983b8ad61796ba465482cfa263df1c46e7bdc6
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

select migration_hooks.add_missing_columns('public.api_requests', array['system_hash varchar(64)']);

select migration_hooks.ensure_index('idx_api_requests_system_hash', 'public.api_requests', '(system_hash)');

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
