//! The environment stamp: a row inside each database, in the project's private schema
//! `app_meta`, saying which environment the database belongs to. URLs can be wrong; the
//! stamp travels with the data.

use anyhow::{Context, Result};
use postgres::Client;

use crate::Environment;

/// Creates the private schema and the stamp table; idempotent.
pub const DDL: &str = "
create schema if not exists app_meta;
revoke all on schema app_meta from public;
create table if not exists app_meta.environment_stamp (
    singleton boolean primary key default true check (singleton),
    environment text not null check (environment in ('production', 'staging', 'local', 'test')),
    stamped_at timestamptz not null default now(),
    stamped_by text not null
);
";

/// Schemas that Supabase manages: present in every project, so they don't make a database
/// count as non-empty, and no command of ours writes to them.
pub const SUPABASE_SCHEMAS: &[&str] = &[
    "auth",
    "storage",
    "realtime",
    "_realtime",
    "extensions",
    "graphql",
    "graphql_public",
    "pgsodium",
    "pgsodium_masks",
    "vault",
    "supabase_functions",
    "supabase_migrations",
    "net",
    "pgbouncer",
    "cron",
    "_analytics",
    "app_meta",
];

/// The stamp, or `None` in an unstamped database.
pub fn read(client: &mut Client) -> Result<Option<Environment>> {
    let exists: bool = client
        .query_one("select to_regclass('app_meta.environment_stamp') is not null", &[])
        .context("cannot read the environment stamp")?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt("select environment from app_meta.environment_stamp", &[])
        .context("cannot read the environment stamp")?;
    row.map(|row| row.get::<_, String>(0).parse()).transpose()
}

/// Whether the database holds any table outside the system and Supabase's schemas.
pub fn is_empty(client: &mut Client) -> Result<bool> {
    let schemas: Vec<String> = SUPABASE_SCHEMAS.iter().map(|s| s.to_string()).collect();
    let count: i64 = client
        .query_one(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p', 'v', 'm') and n.nspname <> 'information_schema'
               and n.nspname not like 'pg\\_%' and n.nspname <> all($1)",
            &[&schemas],
        )
        .context("cannot list the database's tables")?
        .get(0);
    Ok(count == 0)
}

pub(crate) fn write(client: &mut Client, env: Environment, by: &str) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.batch_execute(DDL)?;
    tx.execute(
        "insert into app_meta.environment_stamp (environment, stamped_by) values ($1, $2)
         on conflict (singleton) do update set environment = excluded.environment,
           stamped_at = now(), stamped_by = excluded.stamped_by",
        &[&env.name(), &by],
    )?;
    tx.commit().context("cannot write the environment stamp")
}
