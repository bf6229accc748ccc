//! What every command starts from: the project root, the selected environment behind its
//! guard, and the rules for printing (data on stdout, status on stderr, secrets masked).

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::Result;
use app::{Environment, Guard, secrets};

use crate::flags::Global;

/// Overrides the project root; the tests point it at scratch copies of `env/`.
pub const ROOT_VAR: &str = "XTASK_PROJECT_ROOT";

static QUIET: AtomicBool = AtomicBool::new(false);

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

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A status line on stderr, secrets masked; nothing when quiet.
pub fn status(line: impl AsRef<str>) {
    if !is_quiet() {
        eprintln!("{}", secrets::redact(line.as_ref()));
    }
}

/// A warning on stderr, secrets masked; shown even when quiet.
pub fn warn(line: impl AsRef<str>) {
    eprintln!("warning: {}", secrets::redact(line.as_ref()));
}

/// A line of data on stdout, secrets masked. A closed pipe (`| head`) ends the program
/// quietly, as it does for other command-line tools.
pub fn data(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", secrets::redact(line.as_ref())).is_err() {
        std::process::exit(0);
    }
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
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
