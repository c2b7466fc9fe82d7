--! Previous: sha1:7e0a737a3113c8fd465b73fd5cec37ccf0a30b39
--! Hash: sha1:993b64988b92eeeed7fc2330d7c98ac514080e5d
--! Message: legacy 014 train members

-- legacy 014 train-members: owners and members of each train, with the promise that every
-- train keeps at least one owner — enforced here by the database, not just by the backfill.

create table if not exists public.train_members (
  id uuid primary key default gen_random_uuid(),
  train_id uuid not null references public.trains (id) on delete cascade,
  user_email varchar(255) not null,
  role varchar(20) not null check (role in ('owner', 'member')),
  added_at timestamptz not null default now(),
  added_by varchar(255) not null,
  unique (train_id, user_email)
);
-- A database restored from pg_dump spells this check differently; make it the fresh build's.
select migration_hooks.ensure_check('public.train_members', 'train_members_role_check', $$role in ('owner', 'member')$$);
create index if not exists idx_train_members_train_id on public.train_members (train_id);
create index if not exists idx_train_members_user_email on public.train_members (user_email);
create index if not exists idx_train_members_role on public.train_members (train_id, role);

-- Every train without an owner gets the placeholder owner, as legacy 014 did for trains with
-- no member at all. Also covers trains that have members but no owner, since the rule below
-- needs an owner to protect. Existing memberships are never changed.
insert into public.train_members (train_id, user_email, role, added_by)
select t.id, 'todo@localhost', 'owner', 'system'
  from public.trains t
 where not exists (select 1 from public.train_members m where m.train_id = t.id and m.role = 'owner')
on conflict (train_id, user_email) do nothing;

-- The last owner of a train cannot be removed or demoted. Checked at commit (deferred), so a
-- transaction may add the new owner after demoting the old one; deleting the train itself
-- (which cascades to its members) is allowed because the train is gone by then.
create or replace function public.train_members_keep_an_owner() returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
begin
  if exists (select 1 from public.trains where id = old.train_id)
     and not exists (select 1 from public.train_members where train_id = old.train_id and role = 'owner') then
    raise exception 'train % would have no owner left', (select train_id from public.trains where id = old.train_id)
      using errcode = 'check_violation',
            hint = 'Add another owner to the train before removing or demoting this one.';
  end if;
  return null;
end;
$$;

do $$
begin
  if not exists (select 1 from pg_trigger where tgname = 'train_members_keep_an_owner'
                 and tgrelid = 'public.train_members'::regclass) then
    create constraint trigger train_members_keep_an_owner
      after update or delete on public.train_members
      deferrable initially deferred
      for each row when (old.role = 'owner')
      execute function public.train_members_keep_an_owner();
  end if;
end $$;

comment on table public.train_members is 'Who may manage a train; every train keeps at least one owner.';
