--! Previous: sha1:cc61434c22b96f091cf18deba2d07fbe1ec03985
--! Hash: sha1:cfd995b27277425395a7aca898cbd2466cfaf51f
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_response_body_gin', 'public.api_requests', 'using gin (response_body)');
