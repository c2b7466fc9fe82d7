--! Previous: sha1:c47f385cd76eab6b8882ac34a19486400ce5b15b
--! Hash: sha1:e6ede6d9ae4ede68233a1637254387c178e9c3f1
--! Message: drop idx_api_requests_response_body_task, the full GIN's twin

--! no-transaction
-- See migration 000016: idx_api_requests_response_body_task serves no query its twin does not, and costs every write.
drop index concurrently if exists public.idx_api_requests_response_body_task;
