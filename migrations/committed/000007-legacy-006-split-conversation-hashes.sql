--! Previous: sha1:ce3fa06e6a923591f3cfed061b82e97ccb8e316a
--! Hash: sha1:af4d92665f6e911ec1e9208d952d45741e6a4758
--! Message: legacy 006 split conversation hashes

-- legacy 006 split-conversation-hashes: system_hash, so a changed system prompt does not
-- break conversation linking. Historical rows are hashed by the hooks
-- (hooks/backfills/system-hash.ts), exactly as the application hashes.

alter table public.api_requests
  add column if not exists system_hash varchar(64);

create index if not exists idx_api_requests_system_hash on public.api_requests (system_hash);

comment on column public.api_requests.system_hash is 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
