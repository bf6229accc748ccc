//! What every command starts from: the project root, the selected environment behind its
//! guard, and the printer's line functions (`crate::ui`), re-exported for the commands.

use std::path::PathBuf;

use anyhow::Result;
use app::{Environment, Guard};

use crate::flags::Global;

/// Overrides the project root; the tests point it at scratch copies of `env/`.
pub const ROOT_VAR: &str = "XTASK_PROJECT_ROOT";

/// The repository root: `$XTASK_PROJECT_ROOT`, else the folder above `xtask/`.
pub fn project_root() -> PathBuf {
    match std::env::var_os(ROOT_VAR).filter(|v| !v.is_empty()) {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf(),
    }
}

/// This program, for the steps that run it as a child process. When `cargo xtask ci` has
/// rebuilt it meanwhile, the running file is gone (`... (deleted)`): the new one is at the
/// same path.
pub fn xtask_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.exists() {
        return Ok(exe);
    }
    let text = exe.to_string_lossy();
    Ok(PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text)))
}

pub use crate::ui::{data, status, warn};

/// Whether output is quiet (`-q`): see [`crate::ui::Printer`].
pub fn is_quiet() -> bool {
    crate::ui::printer().is_quiet()
}

/// Loads the settings, resolves the environment from the flags and the process, says what
/// was loaded, and hands back the guard.
pub fn guard(global: &Global) -> Result<Guard> {
    guard_for(global.env)
}

/// Like [`guard`], with the environment chosen by the command (`db` is always local unless
/// told otherwise).
pub fn guard_for(env: Option<Environment>) -> Result<Guard> {
    let guard = Guard::select(&project_root(), env)?;
    let resolved = guard.resolved();
    for warning in &resolved.warnings {
        warn(warning);
    }
    let files = if resolved.files.is_empty() {
        "no env file; using the process environment".to_string()
    } else {
        resolved.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    status(format!("environment: {} ({files})", resolved.environment));
    Ok(guard)
}
