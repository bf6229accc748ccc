//! `stage-sync --from-dump FILE`: a `pg_dump -Fc` file of production as the source. It is
//! restored into a throwaway cluster this process starts, read there as a read-only
//! production source, and the cluster is removed afterwards: on success, on error, and on
//! a panic by `Drop`; after a SIGKILL by the next process that starts a throwaway.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use app::{Guard, guard::op};
use xshell::Shell;

use crate::{
    context::{status, warn},
    pg,
    throwaway::{
        Throwaway,
        restore::{Restore, first_line},
    },
};

/// The database the dump is restored into, beside the cluster's own `postgres` (which holds
/// the throwaway's bootstrap: the dump brings its own schemas).
const DATABASE: &str = "restored";

/// A restored dump; the cluster goes when this does.
pub(super) struct Restored {
    _cluster: Throwaway,
    /// The restorer's URL: the dump is read by the login that restored it, never by a
    /// superuser.
    reader: String,
}

impl Restored {
    /// Checks that `file` is a custom-format archive, then restores it into a new database
    /// of a new throwaway cluster.
    pub(super) fn restore(sh: &Shell, file: &Path, shown: &str) -> Result<Restored> {
        // A custom-format archive starts with `PGDMP`: anything else is refused before a
        // cluster is started.
        let mut magic = [0u8; 5];
        std::io::Read::read_exact(
            &mut std::fs::File::open(file).with_context(|| format!("cannot read the dump {shown}"))?,
            &mut magic,
        )
        .ok();
        if &magic != b"PGDMP" {
            bail!(
                "{shown} is not a pg_dump custom-format archive\nhint: make one with `pg_dump -Fc` or `cargo xtask backup --env production`"
            );
        }
        let cluster = Throwaway::start().context("cannot start a throwaway cluster for the dump")?;
        // Client programs reach the cluster through its guard, as every command's do.
        let maintenance = cluster.guard()?.write::<op::Reset>()?;

        // `--list` reads only the archive's table of contents: a text dump or another file
        // is refused here, before anything is restored.
        let listed = pg::client_cmd(sh, "pg_restore", &maintenance.client_args()?)?
            .arg("--list")
            .arg(file)
            .ignore_status()
            .output()
            .context("cannot run pg_restore")?;
        if !listed.status.success() {
            let why = String::from_utf8_lossy(&listed.stderr);
            bail!(
                "cannot read {shown} as a pg_dump custom-format archive ({}): is it complete?\nhint: make one with `pg_dump -Fc` or `cargo xtask backup --env production`",
                first_line(&why)
            );
        }
        status(format!(
            "restoring {shown} into a throwaway cluster ({}, port {})",
            cluster.cluster.dir.display(),
            cluster.cluster.port
        ));
        // A dump is data, but restoring runs its SQL (CHECK constraints, index expressions,
        // defaults call its functions): `pg::restore` restores it as a login that is no
        // superuser and owns no database, and leaves out what this machine cannot have
        // (another platform's extensions and event triggers, grants to its roles): the
        // schema check before the sync names anything the sync needs that is missing.
        let restore = Restore { throwaway: &cluster, database: DATABASE, create: true, tolerant: true };
        let skipped = restore.run(sh, file, &String::from_utf8_lossy(&listed.stdout), shown)?;
        for line in skipped.lines() {
            warn(format!("left out of {shown}: {line}"));
        }
        let reader = restore.reader_url();
        Ok(Restored { _cluster: cluster, reader })
    }

    /// The restored database as the read-only production source. `key` is the
    /// `STAGE_SYNC_KEY` the pseudonyms are made with.
    pub(super) fn source_guard(&self, key: Option<String>) -> Result<Guard> {
        let vars: BTreeMap<String, String> = key.into_iter().map(|k| ("STAGE_SYNC_KEY".to_string(), k)).collect();
        Guard::restored_dump(&self.reader, vars, app::Settings::load(&crate::context::project_root())?)
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        status("removing the throwaway cluster of the dump");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_dump_is_production_and_only_on_this_machine() {
        let settings = || app::Settings::parse(include_str!("../../../env/environments.toml")).unwrap();
        let local = "postgresql://postgres:pw-local-1234@127.0.0.1:5432/restored";
        let guard = Guard::restored_dump(local, BTreeMap::new(), settings()).unwrap();
        assert_eq!(guard.environment(), app::Environment::Production);
        let remote = "postgresql://postgres:pw-remote-1234@db.abcdefghijklmnopqrst.supabase.co:5432/postgres";
        let err = Guard::restored_dump(remote, BTreeMap::new(), settings()).unwrap_err().to_string();
        assert!(err.starts_with("a restored dump must be on this machine"), "{err}");
    }
}
