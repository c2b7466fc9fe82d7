--! Previous: sha1:eefeb17d3b76c4b4520078b2f4e710e011122d09
--! Hash: sha1:416267c6d283df71208f46a00f27b603559fd696
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_response_body_gin', 'public.api_requests', 'using gin (response_body)');
