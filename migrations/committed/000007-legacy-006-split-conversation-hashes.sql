--! Previous: sha1:ae78017a81c4f8abd3d773810a7bc1f4d187ca77
--! Hash: sha1:62288c9e6ddac655d7b182e27ad1c60598a98d3b
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

alter table public.api_requests
  add column if not exists system_hash varchar(64);

create index if not exists idx_api_requests_system_hash on public.api_requests (system_hash);

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
