-- Dashboards and their widgets: owned by one user within one clinic; a user sees only its own, and only while a member.

create type public.widget_type as enum
  ('kpi', 'line_chart', 'bar_chart', 'pie_chart', 'table', 'goal_progress');

-- (user_id, clinic_id) references the user's role row: the owner must belong to the clinic,
-- and removing the membership removes the dashboards (suspending it, is_active = false,
-- only hides them).
create table public.dashboards (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  user_id uuid not null,
  name text not null check (btrim(name) <> ''),
  description text,
  is_default boolean not null default false,
  layout jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint dashboards_id_user_id_clinic_id_key unique (id, user_id, clinic_id),
  constraint dashboards_membership_fkey foreign key (user_id, clinic_id)
    references public.user_clinic_roles (user_id, clinic_id) on delete cascade
);

create index dashboards_user_id_clinic_id_idx on public.dashboards (user_id, clinic_id);
create index dashboards_clinic_id_idx on public.dashboards (clinic_id);
-- At most one default dashboard per user and clinic.
create unique index dashboards_one_default_key on public.dashboards (user_id, clinic_id)
  where is_default;

-- user_id and clinic_id are copied from the dashboard (enforced by the composite key) so
-- the policy is a plain column test.
create table public.dashboard_widgets (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references public.clinics (id) on delete cascade,
  user_id uuid not null,
  dashboard_id uuid not null,
  metric_definition_id uuid,
  widget_type public.widget_type not null,
  title text,
  position_x integer not null default 0 check (position_x >= 0),
  position_y integer not null default 0 check (position_y >= 0),
  width integer not null default 1 check (width > 0),
  height integer not null default 1 check (height > 0),
  config jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint dashboard_widgets_dashboard_fkey foreign key (dashboard_id, user_id, clinic_id)
    references public.dashboards (id, user_id, clinic_id) on delete cascade,
  -- Deleting a metric blanks the widget's metric rather than deleting the widget.
  constraint dashboard_widgets_metric_definition_fkey foreign key (metric_definition_id, clinic_id)
    references public.metric_definitions (id, clinic_id) on delete set null (metric_definition_id)
);

create index dashboard_widgets_dashboard_id_idx on public.dashboard_widgets (dashboard_id);
create index dashboard_widgets_clinic_id_idx on public.dashboard_widgets (clinic_id);
create index dashboard_widgets_metric_definition_id_idx on public.dashboard_widgets (metric_definition_id)
  where metric_definition_id is not null;

create trigger set_updated_at before update on public.dashboards
  for each row execute function public.set_updated_at();
create trigger set_updated_at before update on public.dashboard_widgets
  for each row execute function public.set_updated_at();

-- RLS: a user reads and writes only its own dashboards/widgets, and only in clinics where it
-- holds an active role. Any role, viewer included, may build personal dashboards.
alter table public.dashboards enable row level security;
alter table public.dashboard_widgets enable row level security;

create policy dashboards_select on public.dashboards for select to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboards_insert on public.dashboards for insert to authenticated
  with check (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboards_update on public.dashboards for update to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id))
  with check (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboards_delete on public.dashboards for delete to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));

create policy dashboard_widgets_select on public.dashboard_widgets for select to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboard_widgets_insert on public.dashboard_widgets for insert to authenticated
  with check (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboard_widgets_update on public.dashboard_widgets for update to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id))
  with check (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
create policy dashboard_widgets_delete on public.dashboard_widgets for delete to authenticated
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));

-- Explicit privileges (see 0001): DML for authenticated and service_role, nothing for anon.
revoke all on all tables in schema public from anon, authenticated;
grant select, insert, update, delete on all tables in schema public to authenticated, service_role;
revoke all on all sequences in schema public from anon;
grant usage, select on all sequences in schema public to authenticated, service_role;
