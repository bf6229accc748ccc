-- Reverts 0002: drops provider_locations and providers (with policies and triggers) and their enum types.

drop table public.provider_locations;
drop table public.providers;

drop type public.provider_status;
drop type public.provider_type;
