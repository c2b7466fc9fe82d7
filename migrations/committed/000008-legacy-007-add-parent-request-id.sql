--! Previous: sha1:62288c9e6ddac655d7b182e27ad1c60598a98d3b
--! Hash: sha1:fb13c6c599377356e67651a0f98a0d0b3c69388b
--! Message: legacy 007 add parent request id

-- legacy 007 add-parent-request-id: direct link to the previous request of a conversation.
--
-- Legacy defect fixed: 007 added chk_parent_request_not_self unconditionally and failed when
-- run twice. The backfill (matching message hashes) runs in the hooks
-- (hooks/backfills/parent-request-ids.ts).

alter table public.api_requests
  add column if not exists parent_request_id uuid;

do $$
begin
  if not exists (
    select 1 from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
     where c.conrelid = 'public.api_requests'::regclass and c.contype = 'f'
       and a.attname = 'parent_request_id'
  ) then
    alter table public.api_requests
      add constraint api_requests_parent_request_id_fkey
      foreign key (parent_request_id) references public.api_requests (request_id);
  end if;
  if not exists (
    select 1 from pg_constraint
     where conrelid = 'public.api_requests'::regclass and conname = 'chk_parent_request_not_self'
  ) then
    alter table public.api_requests
      add constraint chk_parent_request_not_self check (parent_request_id != request_id);
  end if;
end $$;

create index if not exists idx_api_requests_parent_request_id on public.api_requests (parent_request_id);

comment on column public.api_requests.parent_request_id is 'The request this one directly continues (parent_message_hash = its current_message_hash).';
