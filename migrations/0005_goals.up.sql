-- Goals: a target for a metric over a period, per clinic and optionally per provider and/or location; clinic-scoped with RLS.

create type public.goal_period as enum ('daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'custom');

-- provider_id / location_id null = clinic-wide goal. Their foreign keys use NO ACTION
-- (goals are history; see 0004 for why not RESTRICT), as does the metric's.
create table public.goals (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  provider_id uuid,
  location_id uuid,
  metric_definition_id uuid not null,
  period public.goal_period not null default 'monthly',
  start_date date not null,
  end_date date not null,
  target numeric(12,2) not null check (target >= 0),
  notes text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint goals_date_range_check check (end_date >= start_date),
  constraint goals_provider_fkey foreign key (provider_id, clinic_id)
    references public.providers (id, clinic_id),
  constraint goals_location_fkey foreign key (location_id, clinic_id)
    references public.locations (id, clinic_id),
  constraint goals_metric_definition_fkey foreign key (metric_definition_id, clinic_id)
    references public.metric_definitions (id, clinic_id),
  -- One goal per metric, scope and period start (nulls compare equal: PG15).
  constraint goals_scope_period_key unique nulls not distinct
    (clinic_id, metric_definition_id, provider_id, location_id, period, start_date)
);

create index goals_provider_id_idx on public.goals (provider_id) where provider_id is not null;
create index goals_location_id_idx on public.goals (location_id) where location_id is not null;
create index goals_metric_definition_id_idx on public.goals (metric_definition_id);

create trigger set_updated_at before update on public.goals
  for each row execute function public.set_updated_at();

-- RLS: members read; owner/admin set goals.
alter table public.goals enable row level security;

create policy goals_select on public.goals for select to authenticated
  using (app_private.is_clinic_member(clinic_id));
create policy goals_insert on public.goals for insert to authenticated
  with check (app_private.can_manage_clinic(clinic_id));
create policy goals_update on public.goals for update to authenticated
  using (app_private.can_manage_clinic(clinic_id))
  with check (app_private.can_manage_clinic(clinic_id));
create policy goals_delete on public.goals for delete to authenticated
  using (app_private.can_manage_clinic(clinic_id));

-- Explicit privileges (see 0001): DML for authenticated and service_role, nothing for anon.
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
