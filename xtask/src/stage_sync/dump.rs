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
    pg::{self, Throwaway},
};

/// The database the dump is restored into, beside the cluster's own `postgres` (which holds
/// the throwaway's bootstrap: the dump brings its own schemas).
const DATABASE: &str = "restored";

/// The login that restores the dump: no superuser, no `pg_execute_server_program`.
const RESTORER: &str = "xtask_restore";

/// A restored dump; the cluster goes when this does.
pub struct Restored {
    cluster: Throwaway,
}

impl Restored {
    /// Checks that `file` is a custom-format archive, then restores it into a new database
    /// of a new throwaway cluster.
    pub fn restore(sh: &Shell, file: &Path, shown: &str) -> Result<Restored> {
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

        // A dump is data, but restoring runs its SQL (CHECK constraints, index expressions,
        // defaults call its functions): as a superuser it could run programs on this
        // machine (`COPY ... TO PROGRAM`). It is restored by a login that owns only this
        // database and may do nothing a superuser alone may.
        let password = Throwaway::password().replace('\'', "''");
        let mut conn = maintenance.connect()?;
        conn.client()
            .batch_execute(&format!(
                "create role {RESTORER} login password '{password}' nosuperuser nocreatedb nocreaterole;
                 grant pg_read_all_settings to {RESTORER};"
            ))
            // CREATE DATABASE can't share a statement batch (an implicit transaction).
            .and_then(|()| {
                conn.client().batch_execute(&format!("create database {DATABASE} owner {RESTORER} template template0"))
            })
            .map_err(|err| {
                anyhow::anyhow!("cannot create the database for the dump: {}", app::connect::error_chain(&err))
            })?;
        let restorer_url = cluster.url(DATABASE).replacen("//postgres:", &format!("//{RESTORER}:"), 1);
        let restore_into = pg::throwaway_guard(&restorer_url)?.write::<op::Reset>()?.client_args()?;
        status(format!(
            "restoring {shown} into a throwaway cluster ({}, port {})",
            cluster.cluster.dir.display(),
            cluster.cluster.port
        ));
        // Owners are the cluster's superuser (the dump's roles need not exist here);
        // privileges stay, so the schema compares equal to the target's. Errors of objects
        // this cluster cannot have (another platform's extensions, grants to its roles) don't
        // stop the restore: the schema check before the sync catches any that matter.
        // Default privileges name roles the restorer may not act for: they run no code of
        // the dump's, so the superuser restores them alone, after everything else.
        let toc = String::from_utf8_lossy(&listed.stdout).into_owned();
        let (acls, rest): (Vec<&str>, Vec<&str>) =
            toc.lines().partition(|l| !l.starts_with(';') && l.contains(" DEFAULT ACL "));
        let (rest_list, acl_list) = (cluster.cluster.dir.join("restore.list"), cluster.cluster.dir.join("acl.list"));
        std::fs::write(&rest_list, rest.join("\n"))?;
        std::fs::write(&acl_list, acls.join("\n"))?;
        let restored = pg::client_cmd(sh, "pg_restore", &restore_into)?
            .args(["--no-owner", "--jobs=2"])
            .arg(format!("--use-list={}", rest_list.display()))
            .arg(file)
            .ignore_status()
            .output()
            .context("cannot run pg_restore")?;
        if !restored.status.success() {
            let stderr = String::from_utf8_lossy(&restored.stderr);
            let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
            // Data that did not load (a truncated file, a failed COPY) is fatal; objects this
            // cluster cannot have are not.
            match errors.iter().find(|e| !tolerable(e)).or(errors.first().filter(|_| errors.is_empty())) {
                Some(fatal) => bail!("cannot restore {shown}: {}", first_line(fatal)),
                None if errors.is_empty() => bail!("cannot restore {shown}: {}", first_line(&stderr)),
                None => warn(format!(
                    "pg_restore could not restore {} object(s) of {shown} that this cluster cannot have; first: {}",
                    errors.len(),
                    first_line(errors[0])
                )),
            }
        }
        if !acls.is_empty() {
            let as_superuser = pg::throwaway_guard(&cluster.url(DATABASE))?.write::<op::Reset>()?.client_args()?;
            pg::client_cmd(sh, "pg_restore", &as_superuser)?
                .args(["--no-owner", "--exit-on-error"])
                .arg(format!("--use-list={}", acl_list.display()))
                .arg(file)
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .with_context(|| format!("cannot restore the default privileges of {shown}"))?;
        }
        Ok(Restored { cluster })
    }

    /// The restored database as the read-only production source. `key` is the
    /// `STAGE_SYNC_KEY` the pseudonyms are made with.
    pub fn source_guard(&self, key: Option<String>) -> Result<Guard> {
        let vars: BTreeMap<String, String> = key.into_iter().map(|k| ("STAGE_SYNC_KEY".to_string(), k)).collect();
        Guard::restored_dump(&self.cluster.url(DATABASE), vars, app::Settings::load(&crate::context::project_root())?)
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        status("removing the throwaway cluster of the dump");
    }
}

/// An error about an object this cluster cannot have: another platform's extension, a
/// grant to one of its roles, a schema the cluster already holds.
fn tolerable(error: &str) -> bool {
    error.contains("could not execute query")
        && ["does not exist", "is not available", "already exists", "permission denied to create extension"]
            .iter()
            .any(|m| error.contains(m))
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .trim_start_matches("pg_restore: ")
        .trim_start_matches("error: ")
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
        assert!(tolerable(
            "pg_restore: error: could not execute query: ERROR:  extension \"pg_graphql\" is not available"
        ));
        assert!(!tolerable("pg_restore: error: COPY failed for table \"users\": ERROR:  invalid input syntax"));
    }
}
