--! Previous: sha1:e80b3fef308f9dc830ffa4290a161bec5574de7d
--! Hash: sha1:3cd4ae7df93147ddc4d5ac702376bc14d2f5f946
--! Message: legacy 009 add response body gin index

-- legacy 009 add-response-body-gin-index: full GIN index for @> containment queries.
-- The ANALYZE runs in the hooks.

create index if not exists idx_api_requests_response_body_gin
  on public.api_requests using gin (response_body);
