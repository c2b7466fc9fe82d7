--! Previous: sha1:993b64988b92eeeed7fc2330d7c98ac514080e5d
--! Hash: sha1:f70f8952e46995ea8d90cd01491ce4181cad4e4b
--! Message: forget queued builds of three redundant indexes

-- Three indexes of api_requests serve no query that a twin does not serve, yet every row
-- version the proxy or a backfill writes goes into each of them (two are GIN):
--  * idx_requests_request_id: the primary key's own key (legacy 004);
--  * idx_api_requests_response_body_task: GIN over response_body where it is not null (legacy
--    008); the full GIN idx_api_requests_response_body_gin answers every containment query
--    it can;
--  * idx_api_requests_task_name: its predicate matches no response the proxy stores
--    (legacy 008).
-- The next three migrations drop them, one `drop index concurrently` each (no write waits).
-- This one first forgets any build of them that migrations 000005/000009 queued for the
-- online schema step on a database with rows (else the step would build them again after
-- the drops), and any half-done rebuild of them.
delete from migration_hooks.online_index_work
 where name in ('idx_requests_request_id', 'idx_api_requests_response_body_task', 'idx_api_requests_task_name')
    or replaces in ('idx_requests_request_id', 'idx_api_requests_response_body_task', 'idx_api_requests_task_name');

select migration_hooks.drop_index(n)
  from unnest(array['idx_requests_request_id_rebuilding', 'idx_api_requests_response_body_task_rebuilding',
                    'idx_api_requests_task_name_rebuilding']) n;
