--! Previous: sha1:128006140580c58477ab07f6c45d9ce17d65dcef
--! Hash: sha1:62e1d1ecad8cd07da8709c5672a8e95435005c7b
--! Message: legacy 011 add conversation analyses

-- legacy 011 add-conversation-analyses: AI analyses of conversations and their audit log.
-- The ANALYZE of both tables runs in the hooks.

do $$
begin
  if to_regtype('public.conversation_analysis_status') is null then
    create type public.conversation_analysis_status as enum ('pending', 'processing', 'completed', 'failed');
  end if;
end $$;
-- A database that has the type with fewer labels gains the missing ones (order as above).
alter type public.conversation_analysis_status add value if not exists 'pending';
alter type public.conversation_analysis_status add value if not exists 'processing';
alter type public.conversation_analysis_status add value if not exists 'completed';
alter type public.conversation_analysis_status add value if not exists 'failed';

create or replace function public.trigger_set_timestamp() returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

create table if not exists public.conversation_analyses (
  id bigserial primary key,
  conversation_id uuid not null,
  branch_id varchar(255) not null default 'main',
  status public.conversation_analysis_status not null default 'pending',
  model_used varchar(255) default 'gemini-2.5-pro',
  analysis_content text,
  analysis_data jsonb,
  raw_response jsonb,
  error_message text,
  retry_count integer default 0,
  generated_at timestamptz,
  processing_duration_ms integer,
  prompt_tokens integer,
  completion_tokens integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  custom_prompt text,
  unique (conversation_id, branch_id)
);

-- Databases whose table predates a column (custom_prompt came last) gain it.
alter table public.conversation_analyses
  add column if not exists custom_prompt text,
  add column if not exists completed_at timestamptz;

create or replace trigger set_timestamp_on_conversation_analyses
  before update on public.conversation_analyses
  for each row execute function public.trigger_set_timestamp();

create index if not exists idx_conversation_analyses_status
  on public.conversation_analyses (status) where status = 'pending';
create index if not exists idx_conversation_analyses_conversation
  on public.conversation_analyses (conversation_id, branch_id);
create index if not exists idx_conversation_analyses_has_custom_prompt
  on public.conversation_analyses ((custom_prompt is not null)) where custom_prompt is not null;

-- Script-chain databases created the audit log with `domain` (legacy 012 never renamed it).
do $$
begin
  if exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'analysis_audit_log' and column_name = 'domain')
     and not exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'analysis_audit_log' and column_name = 'train_id') then
    alter table public.analysis_audit_log rename column domain to train_id;
  end if;
  -- PostgreSQL 18 names NOT NULL constraints after their column, and a renamed column keeps
  -- the old name: make it the one a fresh build has.
  if exists (select 1 from pg_constraint where conrelid = to_regclass('public.analysis_audit_log') and conname = 'analysis_audit_log_domain_not_null') then
    alter table public.analysis_audit_log rename constraint analysis_audit_log_domain_not_null to analysis_audit_log_train_id_not_null;
  end if;
  if to_regclass('public.idx_audit_domain') is not null then
    if to_regclass('public.idx_audit_train') is null then
      alter index public.idx_audit_domain rename to idx_audit_train;
    else
      drop index public.idx_audit_domain;
    end if;
  end if;
end $$;

create table if not exists public.analysis_audit_log (
  id serial primary key,
  event_type varchar(50) not null,
  outcome varchar(50) not null,
  conversation_id uuid not null,
  branch_id varchar(255) not null,
  train_id varchar(255) not null,
  request_id varchar(255) not null,
  user_context jsonb default '{}',
  metadata jsonb default '{}',
  "timestamp" timestamptz not null default now()
);

create index if not exists idx_audit_conversation on public.analysis_audit_log (conversation_id, branch_id);
create index if not exists idx_audit_train on public.analysis_audit_log (train_id);
create index if not exists idx_audit_timestamp on public.analysis_audit_log ("timestamp");
create index if not exists idx_audit_event_type on public.analysis_audit_log (event_type);

comment on table public.conversation_analyses is 'AI-generated analyses of conversation branches.';
comment on column public.conversation_analyses.status is 'pending → processing → completed | failed.';
comment on column public.conversation_analyses.custom_prompt is 'Prompt override requested by the user, if any.';
comment on table public.analysis_audit_log is 'Audit trail of analysis requests and their outcomes.';
