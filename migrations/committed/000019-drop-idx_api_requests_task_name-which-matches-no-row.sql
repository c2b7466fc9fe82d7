--! Previous: sha1:e6ede6d9ae4ede68233a1637254387c178e9c3f1
--! Hash: sha1:e4d81bd14826f8a0ec4dbb5719edebcb9ea45138
--! Message: drop idx_api_requests_task_name, which matches no row

--! no-transaction
-- See migration 000016: idx_api_requests_task_name serves no query its twin does not, and costs every write.
drop index concurrently if exists public.idx_api_requests_task_name;
