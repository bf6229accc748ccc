//! Content from outside (a `pg_dump -Fc` archive of production, a rehearsal's copy of an
//! environment) restored into a throwaway cluster as data, never as code with rights its
//! author did not have:
//!
//! - the restore runs as [`RESTORER`], a login that is no superuser, does not own the
//!   database (so it cannot `ALTER DATABASE ... SET`), and owns only what it restores and
//!   the database's `public` schema; it also reads the copy afterwards;
//! - the archive's table of contents is parsed field by field ([`Entry`]): event triggers
//!   and extensions this machine does not have are left out by their type, never by a
//!   substring of the line;
//! - default privileges (`ALTER DEFAULT PRIVILEGES FOR ROLE ...`), the one kind of entry
//!   the restorer may not create, are taken from the archive only as statements made of
//!   identifiers and keywords (no literal, no parenthesis: nothing that can call code),
//!   and only then run by the superuser;
//! - settings the content gave its login (`ALTER ROLE ... SET`) are reset before any other
//!   session connects; every session of the tool there pins `search_path` at start-up.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use app::guard::op;
use xshell::Shell;

use super::{Throwaway, throwaway_guard};
use crate::pg::client_cmd;

mod toc;

use toc::unquote;
pub use toc::{Entry, entries, is_default_privileges, is_grant};

/// The login that restores and reads content from outside.
pub const RESTORER: &str = "xtask_restore";

/// The start-up option every session into restored content carries: settings the content
/// set cannot move the search path, and built-in names resolve to `pg_catalog` first.
pub const PINNED_SEARCH_PATH: &str = "options=-c%20search_path%3Dpg_catalog";

/// What a restore left out or could not create, by kind, with a count each.
#[derive(Debug, Default)]
pub struct Skipped(pub BTreeMap<&'static str, Vec<String>>);

impl Skipped {
    fn add(&mut self, kind: &'static str, what: String) {
        self.0.entry(kind).or_default().push(what);
    }

    /// One line per kind: `3 event trigger(s) (first: issue_graphql_placeholder)`.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(|(kind, items)| format!("{} {kind} (first: {})", items.len(), items[0])).collect()
    }
}

pub const EVENT_TRIGGERS: &str = "event trigger(s), which only a superuser may create";
pub const EXTENSIONS: &str = "extension(s) this machine does not have or the restorer may not create";
pub const MISSING_ROLES: &str = "grant(s) or default privilege(s) naming roles this machine does not have";
pub const DEPENDENTS: &str = "object(s) depending on what was left out";
pub const PUBLICATIONS: &str = "publication(s) for all tables or for a schema, which only a superuser may create";
const UNCHECKED: &str = "privilege statement(s) that are not made of names and keywords only";

/// Where restored content lives and how it was restored.
pub struct Restore<'a> {
    pub throwaway: &'a Throwaway,
    /// The database: created for the content when `create`, else an existing one (the
    /// rehearsal's, which holds the throwaway's bootstrap).
    pub database: &'a str,
    pub create: bool,
    /// Objects that this cluster cannot have are left out (a dump of another platform) or
    /// fatal (a copy of the project's own database, which must restore whole).
    pub tolerant: bool,
}

impl Restore<'_> {
    /// The restorer's URL for the database, with the pinned search path: the login the
    /// copy is read through.
    pub fn reader_url(&self) -> String {
        format!("{}?{PINNED_SEARCH_PATH}", self.owner_url())
    }

    /// The restorer's URL with the server's default search path: the login that runs a
    /// rehearsal's migrations on a copy, so that the copy's own code (its triggers, column
    /// defaults, operators) runs with the rights of its author and no more.
    pub fn owner_url(&self) -> String {
        self.throwaway.url(self.database).replacen("//postgres:", &format!("//{RESTORER}:"), 1)
    }

    /// The superuser's URL with the pinned search path: for catalog reads only.
    pub fn superuser_url(&self) -> String {
        format!("{}?{PINNED_SEARCH_PATH}", self.throwaway.url(self.database))
    }

    /// Restores `file` (its `--list` output is `listed`) and returns what was left out.
    pub fn run(&self, sh: &Shell, file: &Path, listed: &str, shown: &str) -> Result<Skipped> {
        let mut skipped = Skipped::default();
        self.prepare()?;
        let (available, installed) = self.extensions()?;
        let (mut kept, mut grants, mut acls, mut left_out) = (Vec::new(), Vec::new(), Vec::new(), Vec::<&str>::new());
        for e in entries(listed) {
            match (e.kind, e.fields.as_slice()) {
                (Some("EVENT TRIGGER"), [_, name, ..]) => skipped.add(EVENT_TRIGGERS, (*name).to_string()),
                // The database's own (the throwaway's bootstrap): there already, the
                // superuser's, not the content's to alter.
                (Some("EXTENSION"), [_, name, ..]) if installed.iter().any(|a| a == name) => left_out.push(name),
                (Some("EXTENSION"), [_, name, ..]) if !available.iter().any(|a| a == name) => {
                    left_out.push(name);
                    skipped.add(EXTENSIONS, (*name).to_string());
                }
                // A comment's tag quotes the name as SQL does (`EXTENSION "uuid-ossp"`).
                (Some("COMMENT"), [_, "EXTENSION", name, ..]) if left_out.contains(&unquote(name)) => {}
                (Some("DEFAULT ACL"), _) => acls.push(e.line),
                // One entry holds every grant on its object: one to a missing role must
                // not take the others with it, so they run one by one after the rest.
                (Some("ACL"), _) if self.tolerant => grants.push(e.line),
                _ => kept.push(e.line),
            }
        }
        let dir = &self.throwaway.cluster.dir;
        let kept_list = dir.join("restore.list");
        std::fs::write(&kept_list, kept.join("\n"))?;
        let restorer = throwaway_guard(&self.reader_url())?.write::<op::Reset>()?.client_args()?;
        let mut restore = client_cmd(sh, "pg_restore", &restorer)?.args(["--no-owner", "--jobs=2"]);
        if !self.tolerant {
            restore = restore.args(["--no-privileges", "--exit-on-error"]);
        }
        let out = restore
            .arg(format!("--use-list={}", kept_list.display()))
            .arg(file)
            .ignore_status()
            .output()
            .context("cannot run pg_restore")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            self.classify(&stderr, shown, &mut skipped)?;
        }
        // Nothing else connects before the content's settings are gone.
        self.reset_settings()?;
        let passes = [
            (grants, "grants", self.reader_url(), is_grant as fn(&str) -> bool),
            (acls, "default-privileges", self.superuser_url(), is_default_privileges),
        ];
        for (entries, name, url, check) in passes.into_iter().filter(|p| self.tolerant && !p.0.is_empty()) {
            let pass = Pass { name, list: dir.join(format!("{name}.list")), url, check };
            std::fs::write(&pass.list, entries.join("\n"))?;
            self.statements(sh, file, &pass, &mut skipped)?;
        }
        Ok(skipped)
    }

    /// Before any content exists: the restorer, the database (the superuser's), the rights
    /// to create schemas and objects in it, and its `public` schema.
    fn prepare(&self) -> Result<()> {
        let maintenance = self.throwaway.guard()?.write::<op::Reset>()?;
        let mut conn = maintenance.connect()?;
        let (role, password) = (crate::sql::ident(RESTORER), crate::sql::literal(Throwaway::password()));
        let db = crate::sql::ident(self.database);
        let fail =
            |err: postgres::Error| anyhow::anyhow!("cannot prepare the restore: {}", app::connect::error_chain(&err));
        conn.client()
            .batch_execute(&format!(
                "create role {role} login password {password} nosuperuser nocreatedb nocreaterole noreplication bypassrls;
                 grant pg_read_all_settings to {role};"
            ))
            .map_err(fail)?;
        if self.create {
            // CREATE DATABASE can't share a statement batch (an implicit transaction).
            conn.client().batch_execute(&format!("create database {db} template template0")).map_err(fail)?;
        }
        conn.client().batch_execute(&format!("grant create, temporary on database {db} to {role}")).map_err(fail)?;
        drop(conn);
        // The restorer owns `public` as the database's owner would (its grants and comment
        // are the content's), without owning the database.
        let mut inside = throwaway_guard(&self.superuser_url())?.write::<op::Reset>()?.connect()?;
        inside.client().batch_execute(&format!("alter schema public owner to {role}")).map_err(fail)?;
        // A copy refers to what the database already has (the throwaway's bootstrap:
        // `auth.users` for its keys, `auth.uid()` in its policies): it may name and
        // reference it, no more.
        let schemas: Vec<String> = inside
            .client()
            .query(
                "select nspname::text from pg_catalog.pg_namespace
                 where nspname not like 'pg\\_%' and nspname not in ('information_schema', 'public')",
                &[],
            )
            .map_err(fail)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for schema in schemas.iter().map(|s| crate::sql::ident(s)) {
            inside
                .client()
                .batch_execute(&format!(
                    "grant usage on schema {schema} to {role}; grant references on all tables in schema {schema} to {role}"
                ))
                .map_err(fail)?;
        }
        Ok(())
    }

    /// The extensions this machine has, and those the database already holds.
    fn extensions(&self) -> Result<(Vec<String>, Vec<String>)> {
        let guard = throwaway_guard(&self.superuser_url())?;
        let mut conn = guard.read::<op::Inspect>()?.connect()?;
        let mut tx = conn.transaction()?;
        let mut names =
            |sql: &str| -> Result<Vec<String>> { Ok(tx.query(sql, &[])?.iter().map(|r| r.get(0)).collect()) };
        let available = names("select name::text from pg_catalog.pg_available_extensions")?;
        let installed = names("select extname::text from pg_catalog.pg_extension")?;
        Ok((available, installed))
    }

    /// Errors of objects this cluster cannot have are counted by kind; any other (data
    /// that did not load, a truncated file) is fatal.
    fn classify(&self, stderr: &str, shown: &str, skipped: &mut Skipped) -> Result<()> {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
        if errors.is_empty() {
            bail!("cannot restore {shown}: {}", first_line(stderr));
        }
        for error in errors {
            match tolerable(error).filter(|_| self.tolerant) {
                Some(kind) => skipped.add(kind, first_line(error).to_string()),
                None => bail!("cannot restore {shown}: {}", first_line(error)),
            }
        }
        Ok(())
    }

    /// Settings the content gave the restorer (for every database or this one) go; it
    /// cannot have set the database's own (it does not own it).
    fn reset_settings(&self) -> Result<()> {
        let mut conn = self.throwaway.guard()?.write::<op::Reset>()?.connect()?;
        let (role, db) = (crate::sql::ident(RESTORER), crate::sql::ident(self.database));
        conn.client()
            .batch_execute(&format!("alter role {role} reset all; alter role {role} in database {db} reset all"))
            .map_err(|err| {
                anyhow::anyhow!("cannot reset the restored login's settings: {}", app::connect::error_chain(&err))
            })
    }

    /// Entries restored statement by statement: their SQL, written by `pg_restore -f`
    /// (which connects nowhere), is run through `psql` as `url`'s login, one statement at
    /// a time, only the lines `check` accepts (grants and revokes as the restorer; default
    /// privileges as the superuser): statements of names and keywords, nothing psql or
    /// the server could take for code.
    fn statements(&self, sh: &Shell, file: &Path, pass: &Pass, skipped: &mut Skipped) -> Result<()> {
        let Pass { name, list, url, check } = pass;
        let dir = &self.throwaway.cluster.dir;
        let (sql_file, script) = (dir.join(format!("{name}.sql")), dir.join(format!("{name}.checked.sql")));
        let program = crate::pg::Binaries::find()?.dir.join("pg_restore");
        let (use_list, output) = (format!("--use-list={}", list.display()), format!("--file={}", sql_file.display()));
        xshell::cmd!(sh, "{program} {use_list} {output} {file}")
            .quiet()
            .ignore_stderr()
            .run()
            .with_context(|| format!("cannot read the {name} of the archive"))?;
        let text = std::fs::read_to_string(&sql_file)?;
        let mut checked = String::new();
        let statement =
            |l: &str| ["GRANT ", "REVOKE ", "ALTER DEFAULT "].iter().any(|k| l.to_ascii_uppercase().starts_with(k));
        for line in text.lines().map(str::trim).filter(|l| statement(l)) {
            if check(line) {
                checked.push_str(line);
                checked.push('\n');
            } else {
                skipped.add(UNCHECKED, line.chars().take(80).collect());
            }
        }
        if checked.is_empty() {
            return Ok(());
        }
        std::fs::write(&script, checked)?;
        let login = throwaway_guard(url)?.write::<op::Reset>()?.client_args()?;
        let out = client_cmd(sh, "psql", &login)?
            .args(["-X", "--no-password", "--quiet", "-v", "ON_ERROR_STOP=0"])
            .arg(format!("--file={}", script.display()))
            .ignore_status()
            .output()
            .context("cannot run psql")?;
        for error in String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains("ERROR:")) {
            let message = error.split_once("ERROR:").map_or(error, |(_, m)| m.trim()).to_string();
            let kind = if message.starts_with("role ") && message.contains("does not exist") {
                MISSING_ROLES
            } else {
                DEPENDENTS
            };
            skipped.add(kind, message);
        }
        Ok(())
    }
}

/// The kind of an error about an object this cluster cannot have, or `None` (fatal).
pub fn tolerable(error: &str) -> Option<&'static str> {
    if !error.contains("could not execute query") {
        return None;
    }
    if ["must be superuser to create FOR ALL TABLES", "must be superuser to add or set schemas"]
        .iter()
        .any(|m| error.contains(m))
    {
        Some(PUBLICATIONS)
    } else if error.contains("role \"") && error.contains("does not exist") {
        Some(MISSING_ROLES)
    } else if ["is not available", "permission denied to create extension", "could not open extension control"]
        .iter()
        .any(|m| error.contains(m))
    {
        Some(EXTENSIONS)
    } else if ["does not exist", "already exists", "is not loaded"].iter().any(|m| error.contains(m)) {
        Some(DEPENDENTS)
    } else {
        None
    }
}

pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .trim_start_matches("pg_restore: ")
        .trim_start_matches("error: ")
}

/// One statement-by-statement pass over the archive: its entries (`list`, a `pg_restore`
/// use-list named `name`), the login that runs them and the check each line must pass.
struct Pass {
    name: &'static str,
    list: PathBuf,
    url: String,
    check: fn(&str) -> bool,
}
