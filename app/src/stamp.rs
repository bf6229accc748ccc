//! The environment stamp: a row inside each database, in the project's private schema
//! `app_meta`, saying which environment the database belongs to. URLs can be wrong; the
//! stamp travels with the data.

use anyhow::{Context, Result, bail};
use postgres::GenericClient;

use crate::Environment;

mod contents;
pub use contents::{SUPABASE_PUBLIC_TABLES, describe as what_it_holds};

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

/// Schemas that Supabase manages (and the tool's `app_meta`): no command of ours writes to
/// them, and schema dumps of a project leave them out. What makes a database non-empty is
/// [`contents`]'s.
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

/// Whether the database is empty: it holds nothing but what the tool's bootstrap or
/// Supabase's platform creates ([`contents`] says what else it holds).
pub fn is_empty(client: &mut impl GenericClient) -> Result<bool> {
    Ok(contents::contents(client)?.is_empty())
}

/// How an unstamped database of `env` gets its stamp, as the README says.
pub fn hint(env: Environment) -> &'static str {
    match env {
        Environment::Production => {
            "production is stamped only by adopting it: `cargo xtask migrate baseline --env production`"
        }
        Environment::Staging => {
            "`cargo xtask migrate up --env staging` stamps a new, empty staging database; `cargo xtask migrate baseline --env staging` adopts one that holds the schema"
        }
        Environment::Local => "`cargo xtask db up` (or `db reset`) creates and stamps the local database",
        Environment::Test => {
            "`cargo xtask migrate up --env test` or `cargo xtask db reset --env test` stamps an empty test database"
        }
    }
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
