//! `migrate up` on a new, empty database that lacks Supabase's layer (its roles and the
//! `auth`, `storage` and `extensions` schemas that migrations grant to and call into): on
//! test and local the same bootstrap `db up` runs lays it down first; on staging and
//! production, where a real Supabase project has it, nothing is changed and one line says
//! what is missing.

use anyhow::{Result, bail};
use app::{
    Environment, Guard,
    guard::{WriteConnection, op},
};
use postgres::GenericClient;

use crate::{
    context::{data, status},
    migrate::Migration,
};

/// The parts of Supabase's layer that the migrations assume.
const ROLES: &[&str] = &["anon", "authenticated", "service_role"];
const SCHEMAS: &[&str] = &["auth", "storage", "realtime", "extensions"];

/// What of Supabase's layer the connected database lacks (`role anon`, `schema auth`).
fn missing(client: &mut impl GenericClient) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for role in ROLES {
        let found: bool =
            client.query_one("select exists (select from pg_catalog.pg_roles where rolname = $1)", &[role])?.get(0);
        if !found {
            missing.push(format!("role {role}"));
        }
    }
    for schema in SCHEMAS {
        let found: bool = client
            .query_one("select exists (select from pg_catalog.pg_namespace where nspname = $1)", &[schema])?
            .get(0);
        if !found {
            missing.push(format!("schema {schema}"));
        }
    }
    Ok(missing)
}

/// Before the first migration into an unstamped, empty database (`conn` carries a pending
/// stamp): on test and local, lays down Supabase's layer with the bootstrap, which stamps
/// the database as `db up` does, and returns true (connect again); on staging and
/// production, refuses, naming what is missing. Anything else is left as it is.
pub(crate) fn prepare(guard: &Guard, conn: &mut WriteConnection<op::Migrate>, files: &[Migration]) -> Result<bool> {
    if conn.pending_stamp().is_none() {
        return Ok(false);
    }
    let missing = missing(conn.client())?;
    if missing.is_empty() {
        return Ok(false);
    }
    let env = guard.environment();
    refuse_where_supabase(env, &guard.resolved().database()?.address(), &missing)?;
    super::check_extensions(conn.client(), files)?;
    status(format!(
        "the empty {env} database lacks {}: laying down Supabase's layer, as `db up` does",
        missing.join(", ")
    ));
    guard.write::<op::Reset>()?.reset_in_place(crate::supabase::SUPABASE_SQL)?;
    Ok(true)
}

/// What [`prepare`] would do, for `migrate up --dry-run` on an unstamped, empty database.
pub(crate) fn dry_run(env: Environment, at: &str, client: &mut impl GenericClient) -> Result<()> {
    let missing = missing(client)?;
    if missing.is_empty() {
        return Ok(());
    }
    refuse_where_supabase(env, at, &missing)?;
    data(format!("would lay down Supabase's layer first ({} missing), as `db up` does", missing.join(", ")))?;
    Ok(())
}

fn refuse_where_supabase(env: Environment, at: &str, missing: &[String]) -> Result<()> {
    if matches!(env, Environment::Staging | Environment::Production) {
        bail!(
            "the database at {at} lacks what every Supabase project has ({}): `migrate up` stopped before changing anything\nhint: {env} is meant to be a Supabase project's database, which comes with them; check that DATABASE_URL points at it",
            missing.join(", ")
        );
    }
    Ok(())
}
