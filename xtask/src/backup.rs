//! `cargo xtask backup`: a `pg_dump -Fc` of the environment's database into `backups/`,
//! verified with `pg_restore --list` before it counts. Also taken by `migrate up` where the
//! environment's settings require a backup.

use std::{
    collections::BTreeSet,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use app::{
    Guard,
    guard::{ClientArgs, op},
};
use xshell::Shell;

use crate::{
    context::{self, data, status},
    flags::{self, Global},
    pg,
};

impl flags::Backup {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let sh = Shell::new()?;
        let guard = context::guard(global)?;
        let backup = take(&sh, &guard)?;
        data(backup.path.display().to_string())?;
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
/// `backups/` without that suffix is always complete. The file is readable by its owner
/// only, and proven to be a dump of the server the guard checked: its tables (and stamp)
/// must be the live database's.
pub(crate) fn take(sh: &Shell, guard: &Guard) -> Result<BackupFile> {
    let target = guard.read::<op::Backup>()?;
    let mut conn = target.connect()?;
    let args = target.client_args()?;
    let (stamp, live) = {
        let mut tx = conn.transaction()?;
        let stamp: String =
            tx.query_one("select to_char(now() at time zone 'utc', 'YYYYMMDD\"T\"HH24MISS\"Z\"')", &[])?.get(0);
        (stamp, live_tables(&mut tx)?)
    };
    let dir = context::project_root().join("backups");
    create_private_dir(&dir)?;
    let path = dir.join(format!("{}-{stamp}.dump", guard.environment()));
    let partial = dir.join(format!(".{}-{stamp}.dump.partial", guard.environment()));
    let result = dump_and_check(sh, &args, &target.url().address(), &partial, &live);
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

/// The tables `pg_dump` dumps, as its listing names them (`schema name owner`): ordinary
/// and partitioned tables outside the system schemas that no extension owns.
fn live_tables(tx: &mut postgres::Transaction<'_>) -> Result<BTreeSet<String>> {
    let rows = tx
        .query(
            "select n.nspname || ' ' || c.relname || ' ' || pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
               and n.nspname not like 'pg\\_%'
               and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass
                               and d.objid = c.oid and d.deptype = 'e')",
            &[],
        )
        .context("cannot list the live database's tables")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))
}

fn dump_and_check(sh: &Shell, args: &ClientArgs, shown: &str, partial: &Path, live: &BTreeSet<String>) -> Result<()> {
    // Created private before pg_dump writes a byte into it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let file = format!("--file={}", partial.display());
    pg::client_cmd(sh, "pg_dump", args)?
        .args(["--format=custom", &file])
        .ignore_stderr()
        .run()
        .with_context(|| format!("cannot dump {shown} (pg_dump)"))?;
    std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o600))?;
    let program = pg::Binaries::find().map(|b| b.dir.join("pg_restore")).unwrap_or_else(|_| "pg_restore".into());
    let listing = xshell::cmd!(sh, "{program} --list {partial}")
        .quiet()
        .ignore_stderr()
        .read()
        .context("the backup does not read back: pg_restore --list failed")?;
    let dumped = dumped_tables(&listing);
    if dumped.is_empty() && !live.is_empty() {
        bail!("the backup reads back empty: pg_restore --list found no tables");
    }
    if &dumped != live {
        let missing = live.difference(&dumped).next();
        let extra = dumped.difference(live).next();
        bail!(
            "the backup is not of the server that was checked: its tables differ from the live database's ({})\nhint: something between here and the database answered pg_dump differently (a tunnel, a proxy, a failover); nothing was changed",
            match (missing, extra) {
                (Some(t), _) => format!("{t} is live but not in the dump"),
                (None, Some(t)) => format!("{t} is in the dump but not live"),
                (None, None) => "no detail".to_string(),
            }
        );
    }
    Ok(())
}

/// `schema name owner` of every TABLE entry in a `pg_restore --list` listing.
fn dumped_tables(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| {
            // `123; 1259 16390 TABLE public clinics postgres`
            let (_, rest) = line.split_once("; ")?;
            let mut parts = rest.splitn(3, ' ');
            let (_, _, entry) = (parts.next()?, parts.next()?, parts.next()?);
            let table = entry.strip_prefix("TABLE ").filter(|t| !t.starts_with("DATA "))?;
            Some(table.trim_end().to_string())
        })
        .collect()
}
