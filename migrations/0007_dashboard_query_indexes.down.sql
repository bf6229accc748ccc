-- Reverts 0007: drops the dashboard query indexes.

drop index public.user_clinic_roles_active_user_id_clinic_id_idx;
drop index public.goals_clinic_id_period_range_idx;
drop index public.daily_dentist_production_clinic_id_date_idx;
drop index public.daily_hygiene_production_clinic_id_date_idx;
