-- Providers (dentists and hygienists) of a clinic and the locations they work at; clinic-scoped with RLS.

create type public.provider_type as enum ('dentist', 'hygienist');
-- Providers are retired with status = 'inactive', never deleted once they have history.
create type public.provider_status as enum ('active', 'inactive', 'on_leave');

create table public.providers (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  -- Optional link to the provider's own login; losing the login keeps the provider.
  user_id uuid references public.users (id) on delete set null,
  first_name text not null check (btrim(first_name) <> ''),
  last_name text not null check (btrim(last_name) <> ''),
  email text check (position('@' in email) > 1),
  provider_type public.provider_type not null,
  status public.provider_status not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint providers_id_clinic_id_key unique (id, clinic_id)
);

create index providers_clinic_id_status_idx on public.providers (clinic_id, status);
create index providers_user_id_idx on public.providers (user_id) where user_id is not null;
create unique index providers_clinic_id_email_key on public.providers (clinic_id, lower(email))
  where email is not null;

-- Which locations a provider works at. Composite keys keep provider, location and row in
-- the same clinic; the join rows go with either side.
create table public.provider_locations (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  provider_id uuid not null,
  location_id uuid not null,
  is_primary boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint provider_locations_provider_id_location_id_key unique (provider_id, location_id),
  constraint provider_locations_provider_fkey foreign key (provider_id, clinic_id)
    references public.providers (id, clinic_id) on delete cascade,
  constraint provider_locations_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id) on delete cascade
);

create index provider_locations_location_id_clinic_id_idx
  on public.provider_locations (location_id, clinic_id);
create index provider_locations_clinic_id_idx on public.provider_locations (clinic_id);
-- At most one primary location per provider.
create unique index provider_locations_one_primary_key on public.provider_locations (provider_id)
  where is_primary;

create trigger set_updated_at before update on public.providers
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.provider_locations
  for each row execute function public.set_updated_at();

-- RLS: members read; owner/admin write (viewer, staff and provider roles are read-only here).
alter table public.providers enable row level security;
alter table public.provider_locations enable row level security;

create policy providers_select on public.providers for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy providers_insert on public.providers for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy providers_update on public.providers for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy providers_delete on public.providers for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

create policy provider_locations_select on public.provider_locations for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy provider_locations_insert on public.provider_locations for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy provider_locations_update on public.provider_locations for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy provider_locations_delete on public.provider_locations for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

-- Explicit privileges (see 0001): DML for authenticated and service_role, nothing for anon.
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
