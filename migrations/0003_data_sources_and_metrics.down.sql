-- Reverts 0003: drops metric_definitions and data_sources (with policies and triggers) and their enum types.

drop table public.metric_definitions;
drop table public.data_sources;

drop type public.metric_unit;
drop type public.sync_status;
drop type public.data_source_type;
