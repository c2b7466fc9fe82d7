-- Generated from the database catalog by scripts/schema/dump-schema.ts. Do not edit:
-- run `npm run db:schema` (or commit a migration) to regenerate.

-- Enum types
CREATE TYPE public.conversation_analysis_status AS ENUM ('pending', 'processing', 'completed', 'failed');

-- Tables (columns in name order)
CREATE TABLE public.analysis_audit_log (
  branch_id character varying(255) NOT NULL,
  conversation_id uuid NOT NULL,
  event_type character varying(50) NOT NULL,
  id integer DEFAULT nextval('analysis_audit_log_id_seq'::regclass) NOT NULL,
  metadata jsonb DEFAULT '{}'::jsonb,
  outcome character varying(50) NOT NULL,
  request_id character varying(255) NOT NULL,
  "timestamp" timestamp with time zone DEFAULT now() NOT NULL,
  train_id character varying(255) NOT NULL,
  user_context jsonb DEFAULT '{}'::jsonb
);
CREATE TABLE public.anthropic_credentials (
  account_id character varying(255) NOT NULL,
  account_name character varying(255) NOT NULL,
  created_at timestamp with time zone DEFAULT now(),
  id uuid DEFAULT gen_random_uuid() NOT NULL,
  last_refresh_at timestamp with time zone,
  oauth_access_token text NOT NULL,
  oauth_expires_at timestamp with time zone NOT NULL,
  oauth_is_max boolean DEFAULT true,
  oauth_refresh_token text NOT NULL,
  oauth_scopes text[] NOT NULL,
  updated_at timestamp with time zone DEFAULT now()
);
CREATE TABLE public.api_requests (
  account_id character varying(255),
  api_key_hash character varying(50),
  api_key_id character varying(50),
  body jsonb,
  branch_id character varying(255) DEFAULT 'main'::character varying,
  cache_creation_input_tokens integer DEFAULT 0,
  cache_read_input_tokens integer DEFAULT 0,
  completed_at timestamp with time zone,
  conversation_id uuid,
  created_at timestamp with time zone DEFAULT now(),
  current_message_hash character(64),
  duration_ms integer,
  error text,
  first_token_ms integer,
  headers jsonb,
  input_tokens integer DEFAULT 0,
  ip_address character varying(45),
  is_subtask boolean DEFAULT false,
  message_count integer DEFAULT 0,
  method character varying(10) NOT NULL,
  model character varying(100),
  output_tokens integer DEFAULT 0,
  parent_message_hash character(64),
  parent_request_id uuid,
  parent_task_request_id uuid,
  path character varying(1024) NOT NULL,
  request_id uuid NOT NULL,
  request_type character varying(50),
  response_body jsonb,
  response_headers jsonb,
  response_status integer,
  response_streaming boolean DEFAULT false,
  system_hash character varying(64),
  task_tool_invocation jsonb,
  "timestamp" timestamp with time zone NOT NULL,
  tool_call_count integer DEFAULT 0,
  total_tokens integer DEFAULT 0,
  train_id character varying(255) NOT NULL,
  usage_data jsonb
);
CREATE TABLE public.conversation_analyses (
  analysis_content text,
  analysis_data jsonb,
  branch_id character varying(255) DEFAULT 'main'::character varying NOT NULL,
  completed_at timestamp with time zone,
  completion_tokens integer,
  conversation_id uuid NOT NULL,
  created_at timestamp with time zone DEFAULT now() NOT NULL,
  custom_prompt text,
  error_message text,
  generated_at timestamp with time zone,
  id bigint DEFAULT nextval('conversation_analyses_id_seq'::regclass) NOT NULL,
  model_used character varying(255) DEFAULT 'gemini-2.5-pro'::character varying,
  processing_duration_ms integer,
  prompt_tokens integer,
  raw_response jsonb,
  retry_count integer DEFAULT 0,
  status conversation_analysis_status DEFAULT 'pending'::conversation_analysis_status NOT NULL,
  updated_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE public.streaming_chunks (
  chunk_index integer NOT NULL,
  created_at timestamp with time zone DEFAULT now(),
  data text NOT NULL,
  id integer DEFAULT nextval('streaming_chunks_id_seq'::regclass) NOT NULL,
  request_id uuid NOT NULL,
  "timestamp" timestamp with time zone NOT NULL,
  token_count integer DEFAULT 0
);
CREATE TABLE public.train_accounts (
  created_at timestamp with time zone DEFAULT now(),
  credential_id uuid NOT NULL,
  id uuid DEFAULT gen_random_uuid() NOT NULL,
  train_id uuid NOT NULL
);
CREATE TABLE public.train_api_keys (
  api_key text NOT NULL,
  created_at timestamp with time zone DEFAULT now(),
  created_by character varying(255),
  id uuid DEFAULT gen_random_uuid() NOT NULL,
  key_prefix character varying(20) NOT NULL,
  key_suffix character varying(10) NOT NULL,
  last_used_at timestamp with time zone,
  name character varying(255),
  revoked_at timestamp with time zone,
  revoked_by character varying(255),
  train_id uuid NOT NULL
);
CREATE TABLE public.train_members (
  added_at timestamp with time zone DEFAULT now() NOT NULL,
  added_by character varying(255) NOT NULL,
  id uuid DEFAULT gen_random_uuid() NOT NULL,
  role character varying(20) NOT NULL,
  train_id uuid NOT NULL,
  user_email character varying(255) NOT NULL
);
CREATE TABLE public.trains (
  created_at timestamp with time zone DEFAULT now(),
  description text,
  id uuid DEFAULT gen_random_uuid() NOT NULL,
  name character varying(255) NOT NULL,
  slack_channel character varying(255),
  slack_enabled boolean DEFAULT false,
  slack_icon_emoji character varying(255),
  slack_username character varying(255),
  slack_webhook_url text,
  train_id character varying(255) NOT NULL,
  updated_at timestamp with time zone DEFAULT now()
);

-- Constraints
ALTER TABLE public.analysis_audit_log ADD CONSTRAINT analysis_audit_log_pkey PRIMARY KEY (id);
ALTER TABLE public.anthropic_credentials ADD CONSTRAINT anthropic_credentials_account_id_key UNIQUE (account_id);
ALTER TABLE public.anthropic_credentials ADD CONSTRAINT anthropic_credentials_account_name_key UNIQUE (account_name);
ALTER TABLE public.anthropic_credentials ADD CONSTRAINT anthropic_credentials_pkey PRIMARY KEY (id);
ALTER TABLE public.api_requests ADD CONSTRAINT api_requests_parent_request_id_fkey FOREIGN KEY (parent_request_id) REFERENCES api_requests(request_id);
ALTER TABLE public.api_requests ADD CONSTRAINT api_requests_parent_task_request_id_fkey FOREIGN KEY (parent_task_request_id) REFERENCES api_requests(request_id);
ALTER TABLE public.api_requests ADD CONSTRAINT api_requests_pkey PRIMARY KEY (request_id);
ALTER TABLE public.api_requests ADD CONSTRAINT chk_parent_request_not_self CHECK ((parent_request_id <> request_id));
ALTER TABLE public.conversation_analyses ADD CONSTRAINT conversation_analyses_conversation_id_branch_id_key UNIQUE (conversation_id, branch_id);
ALTER TABLE public.conversation_analyses ADD CONSTRAINT conversation_analyses_pkey PRIMARY KEY (id);
ALTER TABLE public.streaming_chunks ADD CONSTRAINT streaming_chunks_pkey PRIMARY KEY (id);
ALTER TABLE public.streaming_chunks ADD CONSTRAINT streaming_chunks_request_id_chunk_index_key UNIQUE (request_id, chunk_index);
ALTER TABLE public.streaming_chunks ADD CONSTRAINT streaming_chunks_request_id_fkey FOREIGN KEY (request_id) REFERENCES api_requests(request_id) ON DELETE CASCADE;
ALTER TABLE public.train_accounts ADD CONSTRAINT train_accounts_credential_id_fkey FOREIGN KEY (credential_id) REFERENCES anthropic_credentials(id) ON DELETE CASCADE;
ALTER TABLE public.train_accounts ADD CONSTRAINT train_accounts_pkey PRIMARY KEY (id);
ALTER TABLE public.train_accounts ADD CONSTRAINT train_accounts_train_id_credential_id_key UNIQUE (train_id, credential_id);
ALTER TABLE public.train_accounts ADD CONSTRAINT train_accounts_train_id_fkey FOREIGN KEY (train_id) REFERENCES trains(id) ON DELETE CASCADE;
ALTER TABLE public.train_api_keys ADD CONSTRAINT train_api_keys_api_key_key UNIQUE (api_key);
ALTER TABLE public.train_api_keys ADD CONSTRAINT train_api_keys_pkey PRIMARY KEY (id);
ALTER TABLE public.train_api_keys ADD CONSTRAINT train_api_keys_train_id_fkey FOREIGN KEY (train_id) REFERENCES trains(id) ON DELETE CASCADE;
ALTER TABLE public.train_members ADD CONSTRAINT train_members_keep_an_owner TRIGGER DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE public.train_members ADD CONSTRAINT train_members_pkey PRIMARY KEY (id);
ALTER TABLE public.train_members ADD CONSTRAINT train_members_role_check CHECK (((role)::text = ANY (ARRAY['owner'::text, 'member'::text])));
ALTER TABLE public.train_members ADD CONSTRAINT train_members_train_id_fkey FOREIGN KEY (train_id) REFERENCES trains(id) ON DELETE CASCADE;
ALTER TABLE public.train_members ADD CONSTRAINT train_members_train_id_user_email_key UNIQUE (train_id, user_email);
ALTER TABLE public.trains ADD CONSTRAINT trains_pkey PRIMARY KEY (id);
ALTER TABLE public.trains ADD CONSTRAINT trains_train_id_key UNIQUE (train_id);

-- Views
CREATE MATERIALIZED VIEW public.hourly_stats AS SELECT date_trunc('hour'::text, r."timestamp") AS hour,
    r.train_id,
    r.model,
    count(*) AS request_count,
    sum(r.input_tokens) AS total_input_tokens,
    sum(r.output_tokens) AS total_output_tokens,
    sum(r.cache_creation_input_tokens) AS total_cache_creation_tokens,
    sum(r.cache_read_input_tokens) AS total_cache_read_tokens,
    avg(r.duration_ms) AS avg_response_time,
    sum(r.tool_call_count) AS total_tool_calls
   FROM api_requests r
  WHERE (r."timestamp" > (now() - '7 days'::interval))
  GROUP BY (date_trunc('hour'::text, r."timestamp")), r.train_id, r.model;

-- Indexes
CREATE UNIQUE INDEX analysis_audit_log_pkey ON public.analysis_audit_log USING btree (id);
CREATE INDEX idx_audit_conversation ON public.analysis_audit_log USING btree (conversation_id, branch_id);
CREATE INDEX idx_audit_event_type ON public.analysis_audit_log USING btree (event_type);
CREATE INDEX idx_audit_timestamp ON public.analysis_audit_log USING btree ("timestamp");
CREATE INDEX idx_audit_train ON public.analysis_audit_log USING btree (train_id);
CREATE UNIQUE INDEX anthropic_credentials_account_id_key ON public.anthropic_credentials USING btree (account_id);
CREATE UNIQUE INDEX anthropic_credentials_account_name_key ON public.anthropic_credentials USING btree (account_name);
CREATE UNIQUE INDEX anthropic_credentials_pkey ON public.anthropic_credentials USING btree (id);
CREATE INDEX idx_credentials_account_id ON public.anthropic_credentials USING btree (account_id);
CREATE UNIQUE INDEX api_requests_pkey ON public.api_requests USING btree (request_id);
CREATE INDEX idx_api_requests_conv_id_timestamp ON public.api_requests USING btree (conversation_id, "timestamp");
CREATE INDEX idx_api_requests_model ON public.api_requests USING btree (model);
CREATE INDEX idx_api_requests_parent_request_id ON public.api_requests USING btree (parent_request_id);
CREATE INDEX idx_api_requests_request_type ON public.api_requests USING btree (request_type);
CREATE INDEX idx_api_requests_response_body_gin ON public.api_requests USING gin (response_body);
CREATE INDEX idx_api_requests_system_hash ON public.api_requests USING btree (system_hash);
CREATE INDEX idx_api_requests_timestamp ON public.api_requests USING btree ("timestamp");
CREATE INDEX idx_api_requests_train_id ON public.api_requests USING btree (train_id);
CREATE INDEX idx_api_requests_train_timestamp_response ON public.api_requests USING btree (train_id, "timestamp" DESC) WHERE (response_body IS NOT NULL);
CREATE INDEX idx_requests_account_timestamp ON public.api_requests USING btree (account_id, "timestamp" DESC) WHERE (account_id IS NOT NULL);
CREATE INDEX idx_requests_branch_id ON public.api_requests USING btree (branch_id);
CREATE INDEX idx_requests_conversation_branch ON public.api_requests USING btree (conversation_id, branch_id);
CREATE INDEX idx_requests_conversation_detail ON public.api_requests USING btree (conversation_id, "timestamp", request_id, train_id, model, total_tokens, branch_id) WHERE (conversation_id IS NOT NULL);
CREATE INDEX idx_requests_conversation_id ON public.api_requests USING btree (conversation_id);
CREATE INDEX idx_requests_conversation_subtask ON public.api_requests USING btree (conversation_id, is_subtask, "timestamp", request_id) WHERE (conversation_id IS NOT NULL);
CREATE INDEX idx_requests_conversation_timestamp_id ON public.api_requests USING btree (conversation_id, "timestamp" DESC, request_id DESC) WHERE (conversation_id IS NOT NULL);
CREATE INDEX idx_requests_current_message_hash ON public.api_requests USING btree (current_message_hash);
CREATE INDEX idx_requests_is_subtask ON public.api_requests USING btree (is_subtask);
CREATE INDEX idx_requests_message_count ON public.api_requests USING btree (message_count);
CREATE INDEX idx_requests_parent_message_hash ON public.api_requests USING btree (parent_message_hash);
CREATE INDEX idx_requests_parent_task_request_id ON public.api_requests USING btree (parent_task_request_id);
CREATE INDEX idx_requests_task_tool_invocation_gin ON public.api_requests USING gin (task_tool_invocation) WHERE (task_tool_invocation IS NOT NULL);
CREATE INDEX idx_subtask_seq ON public.api_requests USING btree (conversation_id, "timestamp") WHERE ((branch_id)::text ~~ 'subtask_%'::text);
CREATE UNIQUE INDEX conversation_analyses_conversation_id_branch_id_key ON public.conversation_analyses USING btree (conversation_id, branch_id);
CREATE UNIQUE INDEX conversation_analyses_pkey ON public.conversation_analyses USING btree (id);
CREATE INDEX idx_conversation_analyses_conversation ON public.conversation_analyses USING btree (conversation_id, branch_id);
CREATE INDEX idx_conversation_analyses_has_custom_prompt ON public.conversation_analyses USING btree (((custom_prompt IS NOT NULL))) WHERE (custom_prompt IS NOT NULL);
CREATE INDEX idx_conversation_analyses_status ON public.conversation_analyses USING btree (status) WHERE (status = 'pending'::conversation_analysis_status);
CREATE INDEX idx_hourly_stats_hour_train ON public.hourly_stats USING btree (hour DESC, train_id);
CREATE UNIQUE INDEX idx_hourly_stats_unique ON public.hourly_stats USING btree (hour, train_id, model);
CREATE INDEX idx_streaming_chunks_request_id ON public.streaming_chunks USING btree (request_id, chunk_index);
CREATE UNIQUE INDEX streaming_chunks_pkey ON public.streaming_chunks USING btree (id);
CREATE UNIQUE INDEX streaming_chunks_request_id_chunk_index_key ON public.streaming_chunks USING btree (request_id, chunk_index);
CREATE INDEX idx_train_accounts_credential ON public.train_accounts USING btree (credential_id);
CREATE INDEX idx_train_accounts_train ON public.train_accounts USING btree (train_id);
CREATE UNIQUE INDEX train_accounts_pkey ON public.train_accounts USING btree (id);
CREATE UNIQUE INDEX train_accounts_train_id_credential_id_key ON public.train_accounts USING btree (train_id, credential_id);
CREATE INDEX idx_train_api_keys_key ON public.train_api_keys USING btree (api_key) WHERE (revoked_at IS NULL);
CREATE INDEX idx_train_api_keys_train ON public.train_api_keys USING btree (train_id);
CREATE UNIQUE INDEX train_api_keys_api_key_key ON public.train_api_keys USING btree (api_key);
CREATE UNIQUE INDEX train_api_keys_pkey ON public.train_api_keys USING btree (id);
CREATE INDEX idx_train_members_role ON public.train_members USING btree (train_id, role);
CREATE INDEX idx_train_members_train_id ON public.train_members USING btree (train_id);
CREATE INDEX idx_train_members_user_email ON public.train_members USING btree (user_email);
CREATE UNIQUE INDEX train_members_pkey ON public.train_members USING btree (id);
CREATE UNIQUE INDEX train_members_train_id_user_email_key ON public.train_members USING btree (train_id, user_email);
CREATE INDEX idx_trains_train_id ON public.trains USING btree (train_id);
CREATE UNIQUE INDEX trains_pkey ON public.trains USING btree (id);
CREATE UNIQUE INDEX trains_train_id_key ON public.trains USING btree (train_id);

-- Functions
CREATE OR REPLACE FUNCTION public.refresh_hourly_stats()
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public'
AS $function$
begin
  -- CONCURRENTLY keeps the dashboard readable during the refresh; it needs a populated view.
  if (select ispopulated from pg_matviews where schemaname = 'public' and matviewname = 'hourly_stats') then
    refresh materialized view concurrently public.hourly_stats;
  else
    refresh materialized view public.hourly_stats;
  end if;
end;
$function$
;
CREATE OR REPLACE FUNCTION public.train_members_keep_an_owner()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public'
AS $function$
begin
  if exists (select 1 from public.trains where id = old.train_id)
     and not exists (select 1 from public.train_members where train_id = old.train_id and role = 'owner') then
    raise exception 'train % would have no owner left', (select train_id from public.trains where id = old.train_id)
      using errcode = 'check_violation',
            hint = 'Add another owner to the train before removing or demoting this one.';
  end if;
  return null;
end;
$function$
;
CREATE OR REPLACE FUNCTION public.trigger_set_timestamp()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public'
AS $function$
begin
  new.updated_at = now();
  return new;
end;
$function$
;

-- Triggers
CREATE TRIGGER set_timestamp_on_conversation_analyses BEFORE UPDATE ON public.conversation_analyses FOR EACH ROW EXECUTE FUNCTION trigger_set_timestamp();
CREATE CONSTRAINT TRIGGER train_members_keep_an_owner AFTER DELETE OR UPDATE ON public.train_members DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (((old.role)::text = 'owner'::text)) EXECUTE FUNCTION train_members_keep_an_owner();

-- Comments
COMMENT ON TABLE public.analysis_audit_log IS 'Audit trail of analysis requests and their outcomes.';
COMMENT ON TABLE public.anthropic_credentials IS 'OAuth credentials of Anthropic accounts.';
COMMENT ON TABLE public.api_requests IS 'Every request proxied to the LLM API, with its response.';
COMMENT ON COLUMN public.api_requests.api_key_hash IS 'Hash of the client API key.';
COMMENT ON COLUMN public.api_requests.api_key_id IS 'Client API key identifier (script-chain databases; kept, the application now writes api_key_hash).';
COMMENT ON COLUMN public.api_requests.branch_id IS 'Branch within the conversation: main, branch_…, subtask_N.';
COMMENT ON COLUMN public.api_requests.cache_creation_input_tokens IS 'Input tokens written to the prompt cache.';
COMMENT ON COLUMN public.api_requests.cache_read_input_tokens IS 'Input tokens read from the prompt cache.';
COMMENT ON COLUMN public.api_requests.completed_at IS 'When the response completed (script-chain databases; kept for history).';
COMMENT ON COLUMN public.api_requests.conversation_id IS 'Groups the requests of one conversation.';
COMMENT ON COLUMN public.api_requests.current_message_hash IS 'SHA-256 of the request''s messages, used to chain requests into conversations.';
COMMENT ON COLUMN public.api_requests.first_token_ms IS 'Milliseconds until the first streamed token.';
COMMENT ON COLUMN public.api_requests.ip_address IS 'Client address (script-chain databases; kept for history).';
COMMENT ON COLUMN public.api_requests.is_subtask IS 'True for every request of a sub-task conversation.';
COMMENT ON COLUMN public.api_requests.message_count IS 'Number of messages in the conversation up to this request.';
COMMENT ON COLUMN public.api_requests.parent_message_hash IS 'current_message_hash of the request this one continues.';
COMMENT ON COLUMN public.api_requests.parent_request_id IS 'The request this one directly continues (parent_message_hash = its current_message_hash).';
COMMENT ON COLUMN public.api_requests.parent_task_request_id IS 'For a sub-task request: the request whose response called the Task tool.';
COMMENT ON COLUMN public.api_requests.request_type IS 'inference, query_evaluation, quota, …';
COMMENT ON COLUMN public.api_requests.system_hash IS 'SHA-256 of the stable part of the system prompt (see docs: system-hash).';
COMMENT ON COLUMN public.api_requests.task_tool_invocation IS 'The response''s Task tool calls: [{id, name, input, linked_conversation_id?}].';
COMMENT ON COLUMN public.api_requests.tool_call_count IS 'Number of tool_use blocks in the response.';
COMMENT ON COLUMN public.api_requests.train_id IS 'Train (project) the request belongs to.';
COMMENT ON COLUMN public.api_requests.usage_data IS 'The usage object of the API response, as returned.';
COMMENT ON TABLE public.conversation_analyses IS 'AI-generated analyses of conversation branches.';
COMMENT ON COLUMN public.conversation_analyses.custom_prompt IS 'Prompt override requested by the user, if any.';
COMMENT ON COLUMN public.conversation_analyses.status IS 'pending → processing → completed | failed.';
COMMENT ON MATERIALIZED VIEW public.hourly_stats IS 'Per hour, train and model totals over the last 7 days, for the dashboard.';
COMMENT ON TABLE public.streaming_chunks IS 'Server-sent event chunks of streamed responses.';
COMMENT ON TABLE public.train_accounts IS 'Which credentials a train may use (failover order is the application''s).';
COMMENT ON TABLE public.train_api_keys IS 'API keys clients present to the proxy; only the key is stored, shown by prefix/suffix.';
COMMENT ON TABLE public.train_members IS 'Who may manage a train; every train keeps at least one owner.';
COMMENT ON TABLE public.trains IS 'Projects/teams; api_requests.train_id holds trains.train_id.';
