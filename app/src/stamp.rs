//! The environment stamp: a row inside each database, in the project's private schema
//! `app_meta`, saying which environment the database belongs to. URLs can be wrong; the
//! stamp travels with the data.

use anyhow::{Context, Result, bail};
use postgres::GenericClient;

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
-- Any login may read the stamp (a read-only inspection login included); only the owner
-- writes it. The schema is not one Supabase's API exposes.
grant usage on schema app_meta to public;
revoke all on app_meta.environment_stamp from public;
grant select on app_meta.environment_stamp to public;
";

/// Tables of Supabase's schemas that hold a project's data (its users, files, secrets,
/// jobs): a database with rows in any of them is not empty, though it may have no table
/// of its own yet.
const SUPABASE_DATA_TABLES: &[&str] = &[
    "auth.users",
    "auth.identities",
    "storage.buckets",
    "storage.objects",
    "vault.secrets",
    "cron.job",
    "supabase_migrations.schema_migrations",
];

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

/// The stamp, or `None` in an unstamped database. A stamp table of another shape than ours
/// is an error, never a guess.
pub fn read(client: &mut impl GenericClient) -> Result<Option<Environment>> {
    let exists: bool = client
        .query_one("select to_regclass('app_meta.environment_stamp') is not null", &[])
        .context("cannot read the environment stamp")?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let malformed = "app_meta.environment_stamp is not the table this project writes\nhint: the database's stamp was altered by hand; restore it, or point DATABASE_URL elsewhere";
    let rows = client
        .query("select environment::text from app_meta.environment_stamp", &[])
        .map_err(|err| anyhow::anyhow!("{malformed}: {}", crate::connect::error_chain(&err)))?;
    if rows.len() > 1 {
        bail!("{malformed}: it holds {} rows", rows.len());
    }
    let Some(row) = rows.first() else { return Ok(None) };
    let value: Option<String> = row.try_get(0).map_err(|_| anyhow::anyhow!("{malformed}"))?;
    let Some(value) = value else { bail!("{malformed}: its environment is null") };
    value.parse().map(Some).with_context(|| malformed.to_string())
}

/// Whether the database is empty: no table outside the system and Supabase's schemas, and
/// no rows in the tables of Supabase's schemas that hold a project's data.
pub fn is_empty(client: &mut impl GenericClient) -> Result<bool> {
    if !no_tables_of_its_own(client)? {
        return Ok(false);
    }
    for table in SUPABASE_DATA_TABLES {
        let exists: bool = client
            .query_one("select to_regclass($1) is not null", &[table])
            .context("cannot look for Supabase's tables")?
            .get(0);
        if !exists {
            continue;
        }
        let rows: bool = client
            .query_one(&format!("select exists (select from {table})"), &[])
            .with_context(|| format!("cannot tell whether {table} holds rows"))?
            .get(0);
        if rows {
            return Ok(false);
        }
    }
    Ok(true)
}

fn no_tables_of_its_own(client: &mut impl GenericClient) -> Result<bool> {
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

/// Writes the stamp, inside the caller's transaction: it holds only if the work it belongs
/// to commits.
pub(crate) fn write(client: &mut impl GenericClient, env: Environment, by: &str) -> Result<()> {
    let result = client.batch_execute(DDL).and_then(|()| {
        client.execute(
            "insert into app_meta.environment_stamp (environment, stamped_by) values ($1, $2)
             on conflict (singleton) do update set environment = excluded.environment,
               stamped_at = now(), stamped_by = excluded.stamped_by",
            &[&env.name(), &by],
        )
    });
    result
        .map(|_| ())
        .map_err(|err| anyhow::anyhow!("cannot write the environment stamp: {}", crate::connect::error_chain(&err)))
}
