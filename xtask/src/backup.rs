//! `cargo xtask backup`: a `pg_dump -Fc` of the environment's database into `backups/`,
//! verified with `pg_restore --list` before it counts. Also taken by `migrate up` where the
//! environment's settings require a backup.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use app::{Guard, guard::op};
use xshell::Shell;

use crate::{
    context::{self, data, status},
    flags::{self, Global},
    pg,
};

impl flags::Backup {
    pub fn run(self, global: &Global) -> Result<()> {
        let sh = Shell::new()?;
        let guard = context::guard(global)?;
        let backup = take(&sh, &guard)?;
        data(backup.path.display().to_string());
        Ok(())
    }
}

/// A verified backup file.
#[derive(Debug)]
pub(crate) struct BackupFile {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Dumps to a `.partial` file, verifies it, and only then gives it its name, so a file in
/// `backups/` without that suffix is always complete.
pub(crate) fn take(sh: &Shell, guard: &Guard) -> Result<BackupFile> {
    let target = guard.read::<op::Backup>()?;
    let stamp: String = target
        .connect()?
        .client()
        .query_one("select to_char(now() at time zone 'utc', 'YYYYMMDD\"T\"HH24MISS\"Z\"')", &[])?
        .get(0);
    let dir = context::project_root().join("backups");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}-{stamp}.dump", guard.environment()));
    let partial = dir.join(format!(".{}-{stamp}.dump.partial", guard.environment()));
    let result = dump_and_check(sh, target.url(), &partial);
    if let Err(err) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, &path)?;
    let bytes = std::fs::metadata(&path)?.len();
    let shown = path.strip_prefix(context::project_root()).unwrap_or(&path).display().to_string();
    status(format!("backup of {} verified: {shown} ({:.1} MB)", guard.environment(), bytes as f64 / 1e6));
    Ok(BackupFile { path, bytes })
}

fn dump_and_check(sh: &Shell, url: &app::DatabaseUrl, partial: &std::path::Path) -> Result<()> {
    let file = format!("--file={}", partial.display());
    pg::client_cmd(sh, "pg_dump", url)?
        .args(["--format=custom", &file])
        .ignore_stderr()
        .run()
        .with_context(|| format!("pg_dump of {} failed", url.address()))?;
    let program = pg::Binaries::find().map(|b| b.dir.join("pg_restore")).unwrap_or_else(|_| "pg_restore".into());
    let listing = xshell::cmd!(sh, "{program} --list {partial}")
        .quiet()
        .ignore_stderr()
        .read()
        .context("the backup does not read back: pg_restore --list failed")?;
    if !listing.lines().any(|l| !l.starts_with(';') && !l.trim().is_empty()) {
        bail!("the backup reads back empty: pg_restore --list found no entries");
    }
    Ok(())
}
