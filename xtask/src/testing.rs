//! What only the end-to-end tests use, on the top floor so that nothing below reaches up
//! for it: throwaway clusters with the project's migrations applied, copied from a migrated
//! template made once per test process.

use std::{path::Path, sync::Mutex};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::throwaway::Throwaway;

/// A throwaway cluster whose database the project's migrations have also been applied to,
/// copied from a migrated template made once per process: tests that need the schema stop
/// re-running every migration.
pub fn start_migrated() -> Result<Throwaway> {
    Throwaway::start_from(migrated_template()?)
}

/// The throwaway template with the project's migrations applied, made once per process
/// from a throwaway cluster that is then stopped and kept (its folder goes with the
/// process's other throwaway folders).
fn migrated_template() -> Result<&'static Path> {
    static TEMPLATE: Mutex<Option<&'static Path>> = Mutex::new(None);
    let mut template = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = *template {
        return Ok(dir);
    }
    let throwaway = Throwaway::start()?;
    let migrated = throwaway.guard().and_then(|guard| crate::migrate::up_all(&guard));
    throwaway.cluster.stop(&Shell::new()?, false)?;
    migrated.context("cannot migrate the migrated template cluster")?;
    let dir: &'static Path = Box::leak(throwaway.cluster.dir.clone().into_boxed_path());
    // Kept: its Drop would delete the folder.
    std::mem::forget(throwaway);
    *template = Some(dir);
    Ok(dir)
}
