-- Back to the per-row membership test in every read policy.

alter policy clinics_select on public.clinics
  using (app_private.is_clinic_member(id));
alter policy locations_select on public.locations
  using (app_private.is_clinic_member(clinic_id));
alter policy user_clinic_roles_select on public.user_clinic_roles
  using (app_private.is_clinic_member(clinic_id));
alter policy providers_select on public.providers
  using (app_private.is_clinic_member(clinic_id));
alter policy provider_locations_select on public.provider_locations
  using (app_private.is_clinic_member(clinic_id));
alter policy metric_definitions_select on public.metric_definitions
  using (app_private.is_clinic_member(clinic_id));
alter policy daily_hygiene_production_select on public.daily_hygiene_production
  using (app_private.is_clinic_member(clinic_id));
alter policy daily_dentist_production_select on public.daily_dentist_production
  using (app_private.is_clinic_member(clinic_id));
alter policy daily_location_financials_select on public.daily_location_financials
  using (app_private.is_clinic_member(clinic_id));
alter policy goals_select on public.goals
  using (app_private.is_clinic_member(clinic_id));
alter policy dashboards_select on public.dashboards
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));
alter policy dashboard_widgets_select on public.dashboard_widgets
  using (user_id = (select app_private.current_app_user_id()) and app_private.is_clinic_member(clinic_id));

drop function app_private.member_clinic_ids();
