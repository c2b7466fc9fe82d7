--! Previous: sha1:f70f8952e46995ea8d90cd01491ce4181cad4e4b
--! Hash: sha1:c47f385cd76eab6b8882ac34a19486400ce5b15b
--! Message: drop idx_requests_request_id, the primary key's twin

--! no-transaction
-- See migration 000016: idx_requests_request_id serves no query its twin does not, and costs every write.
drop index concurrently if exists public.idx_requests_request_id;
