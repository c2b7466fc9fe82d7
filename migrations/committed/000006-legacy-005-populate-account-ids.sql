--! Previous: sha1:0ccf32bb665440e1fe026b19c4363299ee1a7932
--! Hash: sha1:63cbe673f31e8ce1d04f7b613a1c8159181c06f2
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
