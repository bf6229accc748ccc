-- Indexes for the dashboard's hot queries: a clinic's production over a date range, goals overlapping a period, and the RLS helpers' active-role lookup.

create index daily_hygiene_production_clinic_id_date_idx
  on public.daily_hygiene_production (clinic_id, date);
create index daily_dentist_production_clinic_id_date_idx
  on public.daily_dentist_production (clinic_id, date);
create index goals_clinic_id_period_range_idx
  on public.goals (clinic_id, start_date, end_date);
-- The RLS helpers look up a member's active roles on every policy check.
create index user_clinic_roles_active_user_id_clinic_id_idx
  on public.user_clinic_roles (user_id, clinic_id) include (role) where is_active;
