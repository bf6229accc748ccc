-- Fixtures for `cargo xtask rls`, loaded as the connecting owner inside a transaction that is
-- always rolled back. Two clinics, A and B, each with an active owner and one row in every
-- tenant table; plus a suspended (inactive) owner of A, who must see no clinic data.
--
-- Fixed uuids: e2e0f15c-<table>-4000-8000-00000000000<who>, where <who> is a (clinic A),
-- b (clinic B) or c (A's inactive member). rls.rs names the clinic and auth ids it needs.
-- Emails use the reserved .invalid domain so they cannot clash with real users.

insert into auth.users (id, aud, role, email) values
  ('e2e0f15c-0001-4000-8000-00000000000a', 'authenticated', 'authenticated', 'rls-owner-a@rls-suite.invalid'),
  ('e2e0f15c-0001-4000-8000-00000000000b', 'authenticated', 'authenticated', 'rls-owner-b@rls-suite.invalid'),
  ('e2e0f15c-0001-4000-8000-00000000000c', 'authenticated', 'authenticated', 'rls-inactive-a@rls-suite.invalid');

insert into public.clinics (id, name) values
  ('e2e0f15c-0002-4000-8000-00000000000a', 'RLS suite clinic A'),
  ('e2e0f15c-0002-4000-8000-00000000000b', 'RLS suite clinic B');

insert into public.users (id, auth_id, email, name) values
  ('e2e0f15c-0003-4000-8000-00000000000a', 'e2e0f15c-0001-4000-8000-00000000000a', 'rls-owner-a@rls-suite.invalid', 'Owner A'),
  ('e2e0f15c-0003-4000-8000-00000000000b', 'e2e0f15c-0001-4000-8000-00000000000b', 'rls-owner-b@rls-suite.invalid', 'Owner B'),
  ('e2e0f15c-0003-4000-8000-00000000000c', 'e2e0f15c-0001-4000-8000-00000000000c', 'rls-inactive-a@rls-suite.invalid', 'Suspended A');

insert into public.locations (id, clinic_id, name) values
  ('e2e0f15c-0004-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'Main office A'),
  ('e2e0f15c-0004-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'Main office B');

-- Owners, so that every write to their own clinic would be allowed: a refused write to the
-- other clinic is then refused because of the clinic, not because of the role.
insert into public.user_clinic_roles (id, user_id, clinic_id, role, is_active) values
  ('e2e0f15c-0005-4000-8000-00000000000a', 'e2e0f15c-0003-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'owner', true),
  ('e2e0f15c-0005-4000-8000-00000000000b', 'e2e0f15c-0003-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'owner', true),
  ('e2e0f15c-0005-4000-8000-00000000000c', 'e2e0f15c-0003-4000-8000-00000000000c', 'e2e0f15c-0002-4000-8000-00000000000a', 'owner', false);

insert into public.providers (id, clinic_id, user_id, first_name, last_name, email, provider_type) values
  ('e2e0f15c-0006-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', null, 'Ada', 'Dentist', 'ada@rls-suite.invalid', 'dentist'),
  ('e2e0f15c-0006-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', null, 'Bea', 'Hygienist', 'bea@rls-suite.invalid', 'hygienist');

insert into public.provider_locations (id, clinic_id, provider_id, location_id, is_primary) values
  ('e2e0f15c-0007-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0006-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', true),
  ('e2e0f15c-0007-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0006-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', true);

insert into public.data_sources (id, clinic_id, location_id, name, access_token, refresh_token) values
  ('e2e0f15c-0008-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', 'Sheet A', 'not-a-real-token-a', 'not-a-real-token-a'),
  ('e2e0f15c-0008-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', 'Sheet B', 'not-a-real-token-b', 'not-a-real-token-b');

insert into public.metric_definitions (id, clinic_id, key, name, data_source_id) values
  ('e2e0f15c-0009-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'rls_suite_production', 'Production', 'e2e0f15c-0008-4000-8000-00000000000a'),
  ('e2e0f15c-0009-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'rls_suite_production', 'Production', 'e2e0f15c-0008-4000-8000-00000000000b');

insert into public.daily_hygiene_production (id, clinic_id, location_id, provider_id, date, production, data_source_id) values
  ('e2e0f15c-000a-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', 'e2e0f15c-0006-4000-8000-00000000000a', '2024-01-02', 1200, 'e2e0f15c-0008-4000-8000-00000000000a'),
  ('e2e0f15c-000a-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', 'e2e0f15c-0006-4000-8000-00000000000b', '2024-01-02', 1300, 'e2e0f15c-0008-4000-8000-00000000000b');

insert into public.daily_dentist_production (id, clinic_id, location_id, provider_id, date, production, data_source_id) values
  ('e2e0f15c-000b-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', 'e2e0f15c-0006-4000-8000-00000000000a', '2024-01-02', 4200, 'e2e0f15c-0008-4000-8000-00000000000a'),
  ('e2e0f15c-000b-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', 'e2e0f15c-0006-4000-8000-00000000000b', '2024-01-02', 4300, 'e2e0f15c-0008-4000-8000-00000000000b');

insert into public.daily_location_financials (id, clinic_id, location_id, date, production, net_production, collections, data_source_id) values
  ('e2e0f15c-000c-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', '2024-01-02', 5400, 5000, 4800, 'e2e0f15c-0008-4000-8000-00000000000a'),
  ('e2e0f15c-000c-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', '2024-01-02', 5600, 5100, 4900, 'e2e0f15c-0008-4000-8000-00000000000b');

insert into public.goals (id, clinic_id, provider_id, location_id, metric_definition_id, period, start_date, end_date, target) values
  ('e2e0f15c-000d-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0006-4000-8000-00000000000a', 'e2e0f15c-0004-4000-8000-00000000000a', 'e2e0f15c-0009-4000-8000-00000000000a', 'monthly', '2024-01-01', '2024-01-31', 100000),
  ('e2e0f15c-000d-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0006-4000-8000-00000000000b', 'e2e0f15c-0004-4000-8000-00000000000b', 'e2e0f15c-0009-4000-8000-00000000000b', 'monthly', '2024-01-01', '2024-01-31', 110000);

-- Dashboards are personal: each belongs to the clinic's active owner, so "A's rows" and
-- "rows user A may see" are the same set.
insert into public.dashboards (id, clinic_id, user_id, name, is_default) values
  ('e2e0f15c-000e-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0003-4000-8000-00000000000a', 'Overview A', true),
  ('e2e0f15c-000e-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0003-4000-8000-00000000000b', 'Overview B', true);

insert into public.dashboard_widgets (id, clinic_id, user_id, dashboard_id, metric_definition_id, widget_type, title) values
  ('e2e0f15c-000f-4000-8000-00000000000a', 'e2e0f15c-0002-4000-8000-00000000000a', 'e2e0f15c-0003-4000-8000-00000000000a', 'e2e0f15c-000e-4000-8000-00000000000a', 'e2e0f15c-0009-4000-8000-00000000000a', 'kpi', 'Production A'),
  ('e2e0f15c-000f-4000-8000-00000000000b', 'e2e0f15c-0002-4000-8000-00000000000b', 'e2e0f15c-0003-4000-8000-00000000000b', 'e2e0f15c-000e-4000-8000-00000000000b', 'e2e0f15c-0009-4000-8000-00000000000b', 'kpi', 'Production B');
