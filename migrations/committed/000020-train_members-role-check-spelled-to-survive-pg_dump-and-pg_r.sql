--! Previous: sha1:e4d81bd14826f8a0ec4dbb5719edebcb9ea45138
--! Hash: sha1:648ea9fbdc92e061df509d8a5c32b7a66237a77d
--! Message: train_members role check spelled to survive pg_dump and pg_restore

-- The role check of train_members (000015), spelled so that it survives a copy.
--
-- `role in ('owner', 'member')` on a varchar column is stored as an ANY over a varchar array
-- cast to text[]. pg_dump prints that back, and the restore parses it into another tree
-- (each element cast to text), so every chain-built database restored from a backup, moved
-- to a new server or upgraded by dump/restore showed this constraint in db:drift for good:
-- nothing pending would rebuild it. This spelling deparses to itself after any number of
-- round trips (test/adoption/restore-round-trip.test.ts).
--
-- Existing databases: ensure_check() rebuilds it NOT VALID (a moment's lock on the small
-- train_members table) and the online schema step validates it without blocking writes.
select migration_hooks.ensure_check('public.train_members', 'train_members_role_check', $$role::text = any (array['owner', 'member']::text[])$$);
