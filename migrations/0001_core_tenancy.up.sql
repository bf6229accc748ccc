-- Core tenancy: clinics, their locations, app users (linked to auth.users) and per-clinic roles, plus the updated_at trigger and the RLS membership helpers in app_private.

-- ---------------------------------------------------------------------------------------
-- Shared trigger function: keeps updated_at current on every table (attached per table).
-- ---------------------------------------------------------------------------------------
create function public.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

comment on function public.set_updated_at() is
  'BEFORE UPDATE trigger: sets updated_at to now(). Attached to every table in public.';

-- Roles a user can hold in a clinic. viewer is read-only everywhere (see policies).
create type public.clinic_role as enum ('owner', 'admin', 'provider', 'staff', 'viewer');

-- ---------------------------------------------------------------------------------------
-- clinics: the tenant. Everything else hangs off a clinic and cascades from it.
-- ---------------------------------------------------------------------------------------
create table public.clinics (
  id uuid primary key default gen_random_uuid(),
  name text not null check (btrim(name) <> ''),
  timezone text not null default 'UTC',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.clinics is 'A dental practice (tenant). Name is deliberately not unique.';

-- ---------------------------------------------------------------------------------------
-- locations: a clinic's offices (addresses). unique (id, clinic_id) lets child tables use
-- composite foreign keys so a row's location always belongs to the row's clinic.
-- ---------------------------------------------------------------------------------------
create table public.locations (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  name text not null check (btrim(name) <> ''),
  address_line1 text,
  address_line2 text,
  city text,
  state text,
  postal_code text,
  phone text,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint locations_id_clinic_id_key unique (id, clinic_id),
  constraint locations_clinic_id_name_key unique (clinic_id, name)
);

-- ---------------------------------------------------------------------------------------
-- users: the application's view of a person. Global (no clinic_id): one person can belong
-- to several clinics through user_clinic_roles. auth_id links to Supabase auth.
-- ---------------------------------------------------------------------------------------
create table public.users (
  id uuid primary key default gen_random_uuid(),
  auth_id uuid unique references auth.users (id) on delete cascade,
  email text not null check (position('@' in email) > 1),
  name text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create unique index users_email_lower_key on public.users (lower(email));

comment on table public.users is
  'App users; deliberately has no clinic_id (membership is in user_clinic_roles).';

-- ---------------------------------------------------------------------------------------
-- user_clinic_roles: one role per user and clinic; is_active = false suspends access
-- without losing the row (and the user's dashboards, which hang off it).
-- ---------------------------------------------------------------------------------------
create table public.user_clinic_roles (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  role public.clinic_role not null default 'viewer',
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint user_clinic_roles_user_id_clinic_id_key unique (user_id, clinic_id)
);

-- The unique (user_id, clinic_id) index serves lookups by user; this one serves by clinic.
create index user_clinic_roles_clinic_id_idx on public.user_clinic_roles (clinic_id);

create trigger set_updated_at before update on public.clinics
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.locations
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.users
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.user_clinic_roles
  for each row execute function public.set_updated_at();

-- ---------------------------------------------------------------------------------------
-- app_private: RLS helpers. SECURITY DEFINER (owned by the migration role, which owns the
-- tables and so is not subject to their RLS) so that policies do not recurse through the
-- RLS of user_clinic_roles; STABLE and search_path = '' with fully qualified names.
-- auth.uid() is wrapped as (select auth.uid()) so it is evaluated once (initplan).
-- ---------------------------------------------------------------------------------------
create schema app_private;

comment on schema app_private is 'Private helpers for row-level security policies; not exposed over the API.';

-- The public.users.id of the signed-in user, or null.
create function app_private.current_app_user_id() returns uuid
language sql stable security definer
set search_path = ''
as $$
  select u.id from public.users u where u.auth_id = (select auth.uid())
$$;

-- Whether the signed-in user holds an active role (any role) in the clinic.
create function app_private.is_clinic_member(clinic uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.user_clinic_roles r
    join public.users u on u.id = r.user_id
    where u.auth_id = (select auth.uid())
      and r.clinic_id = is_clinic_member.clinic
      and r.is_active
  )
$$;

-- Whether the signed-in user holds an active role in the clinic that is one of `roles`.
create function app_private.has_clinic_role(clinic uuid, roles text[]) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.user_clinic_roles r
    join public.users u on u.id = r.user_id
    where u.auth_id = (select auth.uid())
      and r.clinic_id = has_clinic_role.clinic
      and r.is_active
      and r.role::text = any (has_clinic_role.roles)
  )
$$;

-- Data entry: any active role except viewer (viewer is read-only).
create function app_private.can_write_clinic(clinic uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select app_private.has_clinic_role(can_write_clinic.clinic, array['owner', 'admin', 'provider', 'staff'])
$$;

-- Configuration (locations, providers, roles, data sources, metrics, goals): owner or admin.
create function app_private.can_manage_clinic(clinic uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select app_private.has_clinic_role(can_manage_clinic.clinic, array['owner', 'admin'])
$$;

-- Whether the signed-in user and app user `other` share a clinic in which the signed-in
-- user is active (other's role may be inactive, so admins can see suspended members).
create function app_private.shares_clinic_with(other uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.user_clinic_roles mine
    join public.users u on u.id = mine.user_id
    join public.user_clinic_roles theirs on theirs.clinic_id = mine.clinic_id
    where u.auth_id = (select auth.uid())
      and mine.is_active
      and theirs.user_id = shares_clinic_with.other
  )
$$;

revoke all on all functions in schema app_private from public;
grant usage on schema app_private to authenticated, anon, service_role;
grant execute on all functions in schema app_private to authenticated, anon, service_role;

-- ---------------------------------------------------------------------------------------
-- Row-level security. Policies are for `authenticated` only: anon has no policy and no
-- grants (sees nothing); service_role has BYPASSRLS.
-- ---------------------------------------------------------------------------------------
alter table public.clinics enable row level security;
alter table public.locations enable row level security;
alter table public.users enable row level security;
alter table public.user_clinic_roles enable row level security;

-- clinics: members read; owner/admin update; only an owner deletes (cascades everything).
-- No insert policy: clinics are created by service_role during onboarding (a new clinic
-- has no members yet, so no membership test could allow it).
create policy clinics_select on public.clinics for select to authenticated
  using (app_private.is_clinic_member(id));
create policy clinics_update on public.clinics for update to authenticated
  using (app_private.can_manage_clinic(id))
  with check (app_private.can_manage_clinic(id));
create policy clinics_delete on public.clinics for delete to authenticated
  using (app_private.has_clinic_role(id, array['owner']));

-- locations: members read; owner/admin write.
create policy locations_select on public.locations for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy locations_insert on public.locations for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy locations_update on public.locations for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy locations_delete on public.locations for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

-- users: a user reads its own row and the rows of users sharing a clinic; it creates and
-- edits only its own row. No delete policy (deleting auth.users cascades; else service_role).
create policy users_select on public.users for select to authenticated
  using (auth_id = (select auth.uid()) or app_private.shares_clinic_with(id));
create policy users_insert on public.users for insert to authenticated
  with check (auth_id = (select auth.uid()));
create policy users_update on public.users for update to authenticated
  using (auth_id = (select auth.uid()))
  with check (auth_id = (select auth.uid()));

-- user_clinic_roles: members read their clinic's roster. Owners manage all roles; admins
-- manage every role except owner rows (they can neither grant, edit nor remove 'owner').
create policy user_clinic_roles_select on public.user_clinic_roles for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy user_clinic_roles_insert on public.user_clinic_roles for insert to authenticated
  with check (
    app_private.has_clinic_role(clinic_id, array['owner'])
    or (app_private.has_clinic_role(clinic_id, array['admin']) and role <> 'owner')
  );
create policy user_clinic_roles_update on public.user_clinic_roles for update to authenticated
  using (
    app_private.has_clinic_role(clinic_id, array['owner'])
    or (app_private.has_clinic_role(clinic_id, array['admin']) and role <> 'owner')
  )
  with check (
    app_private.has_clinic_role(clinic_id, array['owner'])
    or (app_private.has_clinic_role(clinic_id, array['admin']) and role <> 'owner')
  );
create policy user_clinic_roles_delete on public.user_clinic_roles for delete to authenticated
  using (
    app_private.has_clinic_role(clinic_id, array['owner'])
    or (app_private.has_clinic_role(clinic_id, array['admin']) and role <> 'owner')
  );

-- ---------------------------------------------------------------------------------------
-- Table privileges, stated explicitly rather than relying on default privileges:
-- authenticated gets DML only (no TRUNCATE, which ignores RLS); anon gets nothing.
-- ---------------------------------------------------------------------------------------
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
