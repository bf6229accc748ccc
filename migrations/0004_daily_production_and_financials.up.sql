-- Daily hygiene and dentist production per provider/location/date and daily financials per location/date; clinic_id denormalized for simple RLS.

-- Foreign keys to providers and locations use the default NO ACTION: a provider or location
-- with history cannot be deleted (retire it instead), yet deleting a whole clinic still
-- works because NO ACTION is checked at the end of the statement, after the clinic's
-- cascade has removed these rows too. (RESTRICT would fire mid-cascade and block it.)

create table public.daily_hygiene_production (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  location_id uuid not null,
  provider_id uuid not null,
  date date not null,
  production numeric(12,2) not null default 0,
  verified_production numeric(12,2),
  hours_worked numeric(5,2) check (hours_worked >= 0),
  patients_seen integer check (patients_seen >= 0),
  data_source_id uuid,
  notes text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint daily_hygiene_production_provider_location_date_key
    unique (provider_id, location_id, date),
  constraint daily_hygiene_production_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id),
  constraint daily_hygiene_production_provider_fkey foreign key (provider_id, clinic_id)
    references public.providers (id, clinic_id),
  constraint daily_hygiene_production_data_source_fkey foreign key (data_source_id, clinic_id)
    references public.data_sources (id, clinic_id) on delete set null (data_source_id)
);

create index daily_hygiene_production_location_id_date_idx
  on public.daily_hygiene_production (location_id, date);
create index daily_hygiene_production_data_source_id_idx
  on public.daily_hygiene_production (data_source_id) where data_source_id is not null;

create table public.daily_dentist_production (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  location_id uuid not null,
  provider_id uuid not null,
  date date not null,
  production numeric(12,2) not null default 0,
  verified_production numeric(12,2),
  hours_worked numeric(5,2) check (hours_worked >= 0),
  patients_seen integer check (patients_seen >= 0),
  new_patients integer check (new_patients >= 0),
  data_source_id uuid,
  notes text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint daily_dentist_production_provider_location_date_key
    unique (provider_id, location_id, date),
  constraint daily_dentist_production_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id),
  constraint daily_dentist_production_provider_fkey foreign key (provider_id, clinic_id)
    references public.providers (id, clinic_id),
  constraint daily_dentist_production_data_source_fkey foreign key (data_source_id, clinic_id)
    references public.data_sources (id, clinic_id) on delete set null (data_source_id)
);

create index daily_dentist_production_location_id_date_idx
  on public.daily_dentist_production (location_id, date);
create index daily_dentist_production_data_source_id_idx
  on public.daily_dentist_production (data_source_id) where data_source_id is not null;

-- One row per location and day. Adjustments and write-offs are signed as imported;
-- net_production is stored as reported by the practice-management export.
create table public.daily_location_financials (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  location_id uuid not null,
  date date not null,
  production numeric(12,2) not null default 0,
  adjustments numeric(12,2) not null default 0,
  write_offs numeric(12,2) not null default 0,
  net_production numeric(12,2) not null default 0,
  patient_income numeric(12,2) not null default 0,
  insurance_income numeric(12,2) not null default 0,
  collections numeric(12,2) not null default 0,
  data_source_id uuid,
  notes text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint daily_location_financials_location_id_date_key unique (location_id, date),
  constraint daily_location_financials_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id),
  constraint daily_location_financials_data_source_fkey foreign key (data_source_id, clinic_id)
    references public.data_sources (id, clinic_id) on delete set null (data_source_id)
);

create index daily_location_financials_data_source_id_idx
  on public.daily_location_financials (data_source_id) where data_source_id is not null;

create trigger set_updated_at before update on public.daily_hygiene_production
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.daily_dentist_production
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.daily_location_financials
  for each row execute function public.set_updated_at();

-- RLS: members read; data entry for every active role except viewer.
alter table public.daily_hygiene_production enable row level security;
alter table public.daily_dentist_production enable row level security;
alter table public.daily_location_financials enable row level security;

create policy daily_hygiene_production_select on public.daily_hygiene_production
  for select to authenticated using (app_private.is_clinic_member(clinic_id));
create policy daily_hygiene_production_insert on public.daily_hygiene_production
  for insert to authenticated with check (app_private.can_write_clinic(clinic_id));
create policy daily_hygiene_production_update on public.daily_hygiene_production
  for update to authenticated using (app_private.can_write_clinic(clinic_id))
  with check (app_private.can_write_clinic(clinic_id));
create policy daily_hygiene_production_delete on public.daily_hygiene_production
  for delete to authenticated using (app_private.can_write_clinic(clinic_id));

create policy daily_dentist_production_select on public.daily_dentist_production
  for select to authenticated using (app_private.is_clinic_member(clinic_id));
create policy daily_dentist_production_insert on public.daily_dentist_production
  for insert to authenticated with check (app_private.can_write_clinic(clinic_id));
create policy daily_dentist_production_update on public.daily_dentist_production
  for update to authenticated using (app_private.can_write_clinic(clinic_id))
  with check (app_private.can_write_clinic(clinic_id));
create policy daily_dentist_production_delete on public.daily_dentist_production
  for delete to authenticated using (app_private.can_write_clinic(clinic_id));

create policy daily_location_financials_select on public.daily_location_financials
  for select to authenticated using (app_private.is_clinic_member(clinic_id));
create policy daily_location_financials_insert on public.daily_location_financials
  for insert to authenticated with check (app_private.can_write_clinic(clinic_id));
create policy daily_location_financials_update on public.daily_location_financials
  for update to authenticated using (app_private.can_write_clinic(clinic_id))
  with check (app_private.can_write_clinic(clinic_id));
create policy daily_location_financials_delete on public.daily_location_financials
  for delete to authenticated using (app_private.can_write_clinic(clinic_id));

-- Explicit privileges (see 0001): DML for authenticated and service_role, nothing for anon.
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
