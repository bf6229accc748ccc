-- migrate:no-transaction
-- Covering index for the financials tiles (a clinic's days in a range), built CONCURRENTLY so a live table is not locked; hence outside a transaction.
create index concurrently if not exists daily_location_financials_clinic_id_date_idx
  on public.daily_location_financials (clinic_id, date)
  include (net_production, collections);
