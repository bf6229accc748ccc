//! `migrate up` on a new, empty database that lacks Supabase's layer (its roles and the
//! `auth`, `storage` and `extensions` schemas that migrations grant to and call into): on
//! test and local the same bootstrap `db up` runs lays it down first; on staging and
//! production, where a real Supabase project has it, nothing is changed and one line says
//! what is missing.

use anyhow::{Result, bail};
use app::{Environment, Guard, guard::op};
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

/// Before the first migration into an unstamped, empty database: on test and local, lays
/// down Supabase's layer with the bootstrap (which stamps the database, as `db up` does);
/// on staging and production, refuses, naming what is missing. A stamped database, or one
/// that is not empty (which the migration's own stamp check refuses), is left to that
/// check. With `dry_run`, says what would happen and changes nothing.
pub(crate) fn prepare(guard: &Guard, files: &[Migration], dry_run: bool) -> Result<()> {
    let env = guard.environment();
    let target = guard.read::<op::Inspect>()?;
    let mut conn = target.connect()?;
    if conn.stamp.is_some() {
        return Ok(());
    }
    let mut tx = conn.transaction()?;
    let missing = missing(&mut tx)?;
    if missing.is_empty() || app::stamp::what_it_holds(&mut tx)?.is_some() {
        return Ok(());
    }
    let what = missing.join(", ");
    if matches!(env, Environment::Staging | Environment::Production) {
        bail!(
            "the database at {} lacks what every Supabase project has ({what}): `migrate up` stopped before changing anything\nhint: {env} is meant to be a Supabase project's database, which comes with them; check that DATABASE_URL points at it",
            target.url().address()
        );
    }
    crate::db::extensions::check_on_server(&mut tx, files)?;
    drop(tx);
    drop(conn);
    if dry_run {
        data(format!("would lay down Supabase's layer first ({what} missing), as `db up` does"))?;
        return Ok(());
    }
    status(format!("the empty {env} database lacks {what}: laying down Supabase's layer, as `db up` does"));
    guard.write::<op::Reset>()?.reset_in_place(crate::SUPABASE_SQL).map(drop)
}
