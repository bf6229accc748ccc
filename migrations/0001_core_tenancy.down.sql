-- Reverts 0001: drops the tenancy tables (with their policies and triggers), the app_private helpers and schema, the clinic_role type and set_updated_at().

drop table public.user_clinic_roles;
drop table public.users;
drop table public.locations;
drop table public.clinics;

drop function app_private.shares_clinic_with(uuid);
drop function app_private.can_manage_clinic(uuid);
drop function app_private.can_write_clinic(uuid);
drop function app_private.has_clinic_role(uuid, text[]);
drop function app_private.is_clinic_member(uuid);
drop function app_private.current_app_user_id();
drop schema app_private;

drop type public.clinic_role;
drop function public.set_updated_at();
