--! Previous: sha1:4d7be04300dffea78d4d126cd8b71c7968a31ec9
--! Hash: sha1:7e0a737a3113c8fd465b73fd5cec37ccf0a30b39
--! Message: legacy 013 credential train management

-- legacy 013 credential-train-management: trains, Anthropic credentials, which credentials a
-- train may use, and the API keys clients authenticate with.
-- gen_random_uuid() is built into PostgreSQL 13+; no extension needed.

create table if not exists public.anthropic_credentials (
  id uuid primary key default gen_random_uuid(),
  account_id varchar(255) unique not null,
  account_name varchar(255) unique not null,
  oauth_access_token text not null,
  oauth_refresh_token text not null,
  oauth_expires_at timestamptz not null,
  oauth_scopes text[] not null,
  oauth_is_max boolean default true,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_refresh_at timestamptz
);
create index if not exists idx_credentials_account_id on public.anthropic_credentials (account_id);

create table if not exists public.trains (
  id uuid primary key default gen_random_uuid(),
  train_id varchar(255) unique not null,
  name varchar(255) not null,
  description text,
  slack_enabled boolean default false,
  slack_webhook_url text,
  slack_channel varchar(255),
  slack_username varchar(255),
  slack_icon_emoji varchar(255),
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create index if not exists idx_trains_train_id on public.trains (train_id);

create table if not exists public.train_accounts (
  id uuid primary key default gen_random_uuid(),
  train_id uuid not null references public.trains (id) on delete cascade,
  credential_id uuid not null references public.anthropic_credentials (id) on delete cascade,
  created_at timestamptz default now(),
  unique (train_id, credential_id)
);
create index if not exists idx_train_accounts_train on public.train_accounts (train_id);
create index if not exists idx_train_accounts_credential on public.train_accounts (credential_id);

create table if not exists public.train_api_keys (
  id uuid primary key default gen_random_uuid(),
  train_id uuid not null references public.trains (id) on delete cascade,
  api_key text unique not null,
  key_prefix varchar(20) not null,
  key_suffix varchar(10) not null,
  name varchar(255),
  created_by varchar(255),
  created_at timestamptz default now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  revoked_by varchar(255)
);
create index if not exists idx_train_api_keys_train on public.train_api_keys (train_id);
create index if not exists idx_train_api_keys_key on public.train_api_keys (api_key) where revoked_at is null;

comment on table public.trains is 'Projects/teams; api_requests.train_id holds trains.train_id.';
comment on table public.anthropic_credentials is 'OAuth credentials of Anthropic accounts.';
comment on table public.train_accounts is 'Which credentials a train may use (failover order is the application''s).';
comment on table public.train_api_keys is 'API keys clients present to the proxy; only the key is stored, shown by prefix/suffix.';
