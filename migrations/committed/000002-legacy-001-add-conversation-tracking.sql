--! Previous: sha1:094c43be17697cd39deb4936e71e3aa2ead2336f
--! Hash: sha1:c326958e6b80f697e81dac64970e92f2400ec7f6
--! Message: legacy 001 add conversation tracking

-- legacy 001 add-conversation-tracking: message hashes, conversation and branch columns.

alter table public.api_requests
  add column if not exists current_message_hash char(64),
  add column if not exists parent_message_hash char(64),
  add column if not exists conversation_id uuid,
  add column if not exists branch_id varchar(255) default 'main',
  add column if not exists message_count integer default 0;

-- Docker-init databases index the two hashes under shorter names.
do $$
declare
  pair text[];
begin
  foreach pair slice 1 in array array[
    ['idx_requests_current_hash', 'idx_requests_current_message_hash'],
    ['idx_requests_parent_hash', 'idx_requests_parent_message_hash']
  ] loop
    if to_regclass('public.' || pair[1]) is not null then
      if to_regclass('public.' || pair[2]) is null then
        execute format('alter index public.%I rename to %I', pair[1], pair[2]);
      else
        execute format('drop index public.%I', pair[1]);
      end if;
    end if;
  end loop;
end $$;

create index if not exists idx_requests_current_message_hash on public.api_requests (current_message_hash);
create index if not exists idx_requests_parent_message_hash on public.api_requests (parent_message_hash);
create index if not exists idx_requests_conversation_id on public.api_requests (conversation_id);
create index if not exists idx_requests_branch_id on public.api_requests (branch_id);
create index if not exists idx_requests_conversation_branch on public.api_requests (conversation_id, branch_id);
create index if not exists idx_requests_message_count on public.api_requests (message_count);

comment on column public.api_requests.current_message_hash is 'SHA-256 of the request''s messages, used to chain requests into conversations.';
comment on column public.api_requests.parent_message_hash is 'current_message_hash of the request this one continues.';
comment on column public.api_requests.conversation_id is 'Groups the requests of one conversation.';
comment on column public.api_requests.branch_id is 'Branch within the conversation: main, branch_…, subtask_N.';
comment on column public.api_requests.message_count is 'Number of messages in the conversation up to this request.';
