-- migrate:no-transaction
-- Reverts 0008: drops the financials covering index CONCURRENTLY (outside a transaction).
drop index concurrently if exists public.daily_location_financials_clinic_id_date_idx;
