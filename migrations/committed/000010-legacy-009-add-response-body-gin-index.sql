--! Previous: sha1:fb67a3ba6f3fd510ecc8a8f3b2f02e3b693ed77d
--! Hash: sha1:37341e9f70f6132d533b470630b34b132690ccab
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

create index if not exists idx_api_requests_response_body_gin
  on public.api_requests using gin (response_body);
