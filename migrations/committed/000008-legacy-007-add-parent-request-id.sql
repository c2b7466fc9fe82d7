--! Previous: sha1:30f65d45060aec0522fd6ae1bb36e1600ee873f2
--! Hash: sha1:73355073dfca6806ebbc64aaeb9e7ce6426a1534
--! Message: legacy 007 add parent request id

-- legacy 007 add-parent-request-id: direct link to the previous request of a conversation.
--
-- Legacy defect fixed: 007 added chk_parent_request_not_self unconditionally and failed when
-- run twice. The backfill (matching message hashes) runs in the hooks
-- (hooks/backfills/parent-request-ids.ts).

select migration_hooks.add_missing_columns('public.api_requests', array['parent_request_id uuid']);

do $$
begin
  if not exists (
    select 1 from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
     where c.conrelid = 'public.api_requests'::regclass and c.contype = 'f'
       and a.attname = 'parent_request_id'
  ) then
    -- NOT VALID: no scan under the lock; validated at once on an empty table, else by the
    -- online schema step without blocking writes.
    alter table public.api_requests
      add constraint api_requests_parent_request_id_fkey
      foreign key (parent_request_id) references public.api_requests (request_id) not valid;
    if not migration_hooks.table_has_rows('public.api_requests') then
      alter table public.api_requests validate constraint api_requests_parent_request_id_fkey;
    end if;
  end if;
end $$;

-- Added only when missing or defined otherwise; NOT VALID on a table with rows (see 000001).
select migration_hooks.ensure_check('public.api_requests', 'chk_parent_request_not_self', 'parent_request_id != request_id');

select migration_hooks.ensure_index('idx_api_requests_parent_request_id', 'public.api_requests', '(parent_request_id)');

comment on column public.api_requests.parent_request_id is 'The request this one directly continues (parent_message_hash = its current_message_hash).';
