//! `migrate verify`: every migration checked on a throwaway cluster, ups and downs against
//! schema snapshots.

use std::time::Instant;

use anyhow::{Result, bail};
use app::{Environment, guard::op};
use xshell::Shell;

use super::{apply_down, apply_up, layout, load_files, lock_and_plan, schema};
use crate::{context::status, throwaway::Throwaway};

/// On a throwaway cluster: apply every migration, snapshotting the schema after each; then
/// from the newest down, revert each (the schema must be the one from before its up) and
/// apply it again (the schema must be the straight apply's), and revert it to go on. In the
/// Supabase layout, which has no downs: every migration applies in order on a fresh
/// Supabase-style database.
pub(crate) fn verify(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    let files = load_files()?;
    let throwaway = Throwaway::start()?;
    let guard = throwaway.guard()?;
    let target = guard.write::<op::MigrateDown>()?;
    let mut conn = target.connect()?;
    let args = target.client_args()?;
    let dump = || schema::dump(sh, &args, "the throwaway cluster");
    super::check_extensions(conn.client(), &files)?;
    lock_and_plan(&mut conn, &files, None)?;
    let backup = target.backed_up(|| crate::backup::take(sh, &guard))?;
    if layout::folder()?.layout.forward_only() {
        for m in &files {
            apply_up(conn.client(), m, Environment::Test, &backup, None)?;
        }
        status(format!(
            "verified {} migrations: each applies in order on a fresh Supabase-style database (a forward-only layout has no downs to check) ({:.1} s)",
            files.len(),
            started.elapsed().as_secs_f64()
        ));
        return Ok(());
    }
    let mut snapshots = vec![dump()?];
    for m in &files {
        apply_up(conn.client(), m, Environment::Test, &backup, None)?;
        snapshots.push(dump()?);
    }
    for (k, m) in files.iter().enumerate().rev() {
        apply_down(conn.client(), m)?;
        if let Some(difference) = schema::first_difference(&snapshots[k], &dump()?) {
            let down = m.down.as_ref().map_or(&m.up.file, |d| &d.file);
            bail!("{down} does not restore the schema from before its up: {difference}");
        }
        apply_up(conn.client(), m, Environment::Test, &backup, None)?;
        if let Some(difference) = schema::first_difference(&snapshots[k + 1], &dump()?) {
            bail!("{} applied again after its down differs from the straight apply: {difference}", m.up.file);
        }
        apply_down(conn.client(), m)?;
    }
    status(format!(
        "verified {} migrations: each down restores the schema before its up, each up re-applies identically ({:.1} s)",
        files.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
