//! The tables this project keeps in each database's `app_meta` schema, defined in one place:
//! the migration ledger (`migrate`, `migrate baseline`) and the stage-sync log. The schema
//! itself and its `environment_stamp` belong to `app::stamp`, because only the guard writes
//! a stamp; these tables are created after it, in the transaction of the change they record.

/// The ledger: one row per applied (or failed) migration.
pub(crate) const LEDGER_DDL: &str = "
create table if not exists app_meta.schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    duration_ms bigint not null,
    outcome text not null check (outcome in ('applied', 'failed')),
    environment text not null,
    error text,
    backup_path text,
    backup_bytes bigint
);
-- Readable by any login, as the stamp is: `migrate status` with a read-only login.
grant select on app_meta.schema_migrations to public;
";

/// The stage-sync log in the target: one row per sync (the target's stamp stays as it is).
pub(crate) const SYNC_LOG_DDL: &str = "
create table if not exists app_meta.sync_log (
    id bigserial primary key,
    synced_at timestamptz not null default now(),
    source_environment text not null,
    source_project text,
    rows_per_table jsonb not null,
    rules_checksum text not null,
    schema_version integer,
    duration_ms bigint not null
);
";
