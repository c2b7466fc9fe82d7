--! Previous: sha1:e3a89ad59c8a9e2757128674f2f60829670e8676
--! Hash: sha1:0f3f34703b89b421e8b3363adfceb187088e9118
--! Message: legacy 005 populate account ids

-- legacy 005 populate-account-ids: the account_id column and its index.
--
-- Legacy 005 filled account_id from a domain → account table hard-coded in the script. The
-- mapping now comes from a file (ACCOUNT_MAPPING_FILE) and is applied by the hooks
-- (hooks/backfills/account-ids.ts), only where account_id is NULL.

select migration_hooks.add_missing_columns('public.api_requests', array['account_id varchar(255)']);

select migration_hooks.ensure_index('idx_requests_account_timestamp', 'public.api_requests', '(account_id, "timestamp" desc)
  where account_id is not null');

-- Docker-init's plain (account_id) index is covered by the one above.
select migration_hooks.drop_index('idx_requests_account_id');
