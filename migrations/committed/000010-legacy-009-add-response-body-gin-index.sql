--! Previous: sha1:fe04eab39613386695e7d78c9c868f2e7184eb62
--! Hash: sha1:ccc941f3e22ebc81e729c014c0de156ad5f55b60
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_response_body_gin', 'public.api_requests', 'using gin (response_body)');
