-- Reverts 0004: drops the three daily fact tables with their policies, triggers and indexes.

drop table public.daily_location_financials;
drop table public.daily_dentist_production;
drop table public.daily_hygiene_production;
