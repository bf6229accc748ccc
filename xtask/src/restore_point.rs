//! The restore point a command keeps before it rewrites a database in place (`db reset`,
//! `seed --replace`), and the detached `db reset --drop-replaced` that drops, off the
//! waiting person's clock, the database a swap replaced. Below the commands that use it
//! (`db`, `seed`), so neither reaches into the other.

use std::time::Instant;

use anyhow::Result;
use app::{Environment, Guard, guard::op};

use crate::context::{self, status, warn};

/// Copies the database, as it is, to its restore point before a command rewrites it in
/// place; where none can be kept (staging: the matrix allows no undo; someone connected),
/// says so and goes on.
pub(crate) fn keep_restore_point(guard: &Guard, replaced_by: &str) -> Result<()> {
    let env = guard.environment();
    let Ok(target) = guard.write::<op::Undo>() else {
        status(format!("no restore point kept: the access matrix allows no undo on {env}"));
        return Ok(());
    };
    let started = Instant::now();
    match target.keep_restore_point(replaced_by)? {
        None => {
            spawn_drop_replaced(env);
            status(format!(
                "kept the database as it was as its restore point in {:.1} s (`cargo xtask db undo` swaps it back)",
                started.elapsed().as_secs_f64()
            ));
        }
        Some(why) => warn(format!("no restore point kept: {why}")),
    }
    Ok(())
}

/// Starts `db reset --drop-replaced` detached: dropping the database a clone replaced
/// forces a checkpoint, which the person waiting on the reset need not wait for. Not
/// started, it is dropped by the next reset.
pub(crate) fn spawn_drop_replaced(env: Environment) {
    let Ok(exe) = context::xtask_exe() else { return };
    let _ = std::process::Command::new(exe)
        .args(["db", "reset", "--drop-replaced", "-q", "--env", env.name()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
