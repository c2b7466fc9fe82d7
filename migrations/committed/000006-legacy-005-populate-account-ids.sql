--! Previous: sha1:f51d7e05fd7123f74e17ea6c575e0005280c4c35
--! Hash: sha1:ae78017a81c4f8abd3d773810a7bc1f4d187ca77
--! Message: legacy 005 populate account ids

-- legacy 005 populate-account-ids: the account_id column and its index.
--
-- Legacy 005 filled account_id from a domain → account table hard-coded in the script. The
-- mapping now comes from a file (ACCOUNT_MAPPING_FILE) and is applied by the hooks
-- (hooks/backfills/account-ids.ts), only where account_id is NULL.

alter table public.api_requests
  add column if not exists account_id varchar(255);

create index if not exists idx_requests_account_timestamp
  on public.api_requests (account_id, "timestamp" desc)
  where account_id is not null;

-- Docker-init's plain (account_id) index is covered by the one above.
drop index if exists public.idx_requests_account_id;
