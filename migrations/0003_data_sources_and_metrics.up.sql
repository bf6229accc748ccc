-- Data sources (spreadsheet imports holding OAuth tokens) and per-clinic metric definitions; clinic-scoped with RLS.

create type public.data_source_type as enum ('google_sheets', 'excel', 'csv');
create type public.sync_status as enum ('pending', 'syncing', 'succeeded', 'failed');
create type public.metric_unit as enum ('currency', 'count', 'percent', 'ratio', 'hours');

-- access_token and refresh_token are SECRETS: only owners/admins can read this table
-- through RLS, and copies to other environments must scrub them.
create table public.data_sources (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  -- Optional: a source that feeds a single location.
  location_id uuid,
  name text not null check (btrim(name) <> ''),
  source_type public.data_source_type not null default 'google_sheets',
  spreadsheet_id text,
  sheet_name text,
  access_token text,
  refresh_token text,
  token_expires_at timestamptz,
  last_synced_at timestamptz,
  sync_status public.sync_status not null default 'pending',
  last_error text,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint data_sources_id_clinic_id_key unique (id, clinic_id),
  -- Deleting the location detaches the source instead of deleting it (PG15 column list).
  constraint data_sources_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id) on delete set null (location_id)
);

create index data_sources_clinic_id_idx on public.data_sources (clinic_id);
create index data_sources_location_id_idx on public.data_sources (location_id)
  where location_id is not null;

-- What a dashboard can show and a goal can target, per clinic (clinics name metrics their
-- own way). key is the stable machine name.
create table public.metric_definitions (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  key text not null check (key ~ '^[a-z][a-z0-9_]*$'),
  name text not null check (btrim(name) <> ''),
  description text,
  unit public.metric_unit not null default 'currency',
  aggregation text not null default 'sum'
    check (aggregation in ('sum', 'avg', 'min', 'max', 'last')),
  -- Where the metric's numbers come from, if imported; deleting the source keeps the metric.
  data_source_id uuid,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint metric_definitions_id_clinic_id_key unique (id, clinic_id),
  constraint metric_definitions_clinic_id_key_key unique (clinic_id, key),
  constraint metric_definitions_data_source_fkey foreign key (data_source_id, clinic_id)
    references public.data_sources (id, clinic_id) on delete set null (data_source_id)
);

create index metric_definitions_data_source_id_idx on public.metric_definitions (data_source_id)
  where data_source_id is not null;

create trigger set_updated_at before update on public.data_sources
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.metric_definitions
  for each row execute function public.set_updated_at();

alter table public.data_sources enable row level security;
alter table public.metric_definitions enable row level security;

-- data_sources: owner/admin only, for reads too, because rows carry OAuth tokens.
-- (Syncing runs as service_role, which bypasses RLS.)
create policy data_sources_select on public.data_sources for select to authenticated
  using (app_private.can_manage_clinic(clinic_id));
create policy data_sources_insert on public.data_sources for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy data_sources_update on public.data_sources for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy data_sources_delete on public.data_sources for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

-- metric_definitions: members read; owner/admin write.
create policy metric_definitions_select on public.metric_definitions for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy metric_definitions_insert on public.metric_definitions for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy metric_definitions_update on public.metric_definitions for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy metric_definitions_delete on public.metric_definitions for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

-- Explicit privileges (see 0001): DML for authenticated and service_role, nothing for anon.
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
