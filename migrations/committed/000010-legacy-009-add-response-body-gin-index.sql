--! Previous: sha1:4f20605e34319e51216998cae62b416bd85a4099
--! Hash: sha1:953f6c7d2743add08716f6df69531174ae1610d7
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_response_body_gin', 'public.api_requests', 'using gin (response_body)');
