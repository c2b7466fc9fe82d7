--! Previous: sha1:10ab1d4b67f012fb39b33c6344852e038a8ca9bc
--! Hash: sha1:6ba15edc4aeae59349a31147224510d3e285193d
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
