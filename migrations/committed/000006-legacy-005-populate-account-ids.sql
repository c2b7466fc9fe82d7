--! Previous: sha1:bd5e18fa7a2ca66a59c982723f5b9c219640deb4
--! Hash: sha1:40c3375cd99185ba910947acf20faa34c7741245
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
