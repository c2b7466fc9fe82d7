--! Previous: sha1:7bfa6c1df5a2e36a703489cb6e86ceed62ac74e3
--! Hash: sha1:d41205ee5aff6f305161e4359c4baa5ca673688d
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

select migration_hooks.ensure_index('idx_api_requests_response_body_gin', 'public.api_requests', 'using gin (response_body)');
