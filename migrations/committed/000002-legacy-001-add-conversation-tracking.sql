--! Previous: sha1:811d86468185bbc98da6341ab4e9bf38fbfcf933
--! Hash: sha1:8561ec8bd2848e72bd7721447599da7c089c4d7e
--! Message: legacy 001 add conversation tracking

-- legacy 001 add-conversation-tracking: message hashes, conversation and branch columns.

select migration_hooks.add_missing_columns('public.api_requests',
  array['current_message_hash char(64)', 'parent_message_hash char(64)', 'conversation_id uuid',
        'branch_id varchar(255) default ''main''', 'message_count integer default 0']);

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
        perform migration_hooks.drop_index(pair[1]);
      end if;
    end if;
  end loop;
end $$;

select migration_hooks.ensure_index('idx_requests_current_message_hash', 'public.api_requests', '(current_message_hash)');
select migration_hooks.ensure_index('idx_requests_parent_message_hash', 'public.api_requests', '(parent_message_hash)');
select migration_hooks.ensure_index('idx_requests_conversation_id', 'public.api_requests', '(conversation_id)');
select migration_hooks.ensure_index('idx_requests_branch_id', 'public.api_requests', '(branch_id)');
select migration_hooks.ensure_index('idx_requests_conversation_branch', 'public.api_requests', '(conversation_id, branch_id)');
select migration_hooks.ensure_index('idx_requests_message_count', 'public.api_requests', '(message_count)');

comment on column public.api_requests.current_message_hash is 'SHA-256 of the request''s messages, used to chain requests into conversations.';
comment on column public.api_requests.parent_message_hash is 'current_message_hash of the request this one continues.';
comment on column public.api_requests.conversation_id is 'Groups the requests of one conversation.';
comment on column public.api_requests.branch_id is 'Branch within the conversation: main, branch_…, subtask_N.';
comment on column public.api_requests.message_count is 'Number of messages in the conversation up to this request.';
