//! The guard: the only way to a database connection. It consults the access matrix for an
//! (operation, environment) pair and the environment's settings (test data, backups) and
//! hands out a target typed by the operation; a write target's connection checks the
//! database's own stamp before anything is written.
//!
//! One command, one server: the first connection pins the endpoint it reached and the
//! server's [`Identity`]; every later connection of the same guard (a second session, a
//! `pg_dump`) goes to that endpoint only and must show the same identity
//! (`guard/server.rs`). The targets and connections are in `guard/targets.rs`, what is
//! done to whole databases in `guard/databases.rs`.
//!
//! Code that writes takes a `WriteConnection<O>`, which nothing outside this module can
//! construct:
//!
//! ```compile_fail,E0451
//! use std::marker::PhantomData;
//! use app::{Environment, guard::{WriteTarget, op}, matrix::Access};
//! let url = "postgresql://postgres@db.yovbdmjwrrgardkgrenc.supabase.co/postgres".parse().unwrap();
//! // The fields are private: only the guard can make a target.
//! let target: WriteTarget<op::Seed> = WriteTarget {
//!     env: Environment::Test, url, access: Access::Yes, backup: false, pin: Default::default(), _op: PhantomData,
//! };
//! ```
//!
//! Nor can a guard be made from a forged selection: its constructors are [`Guard::select`]
//! (the project's env files and detection) and [`Guard::throwaway`] (a cluster the project
//! started, proven by the server itself).
//!
//! ```compile_fail,E0624
//! let settings = app::Settings::parse("").unwrap();
//! let resolved: app::Resolved = todo!();
//! let guard = app::Guard::new(resolved, settings);
//! ```

use std::{
    marker::PhantomData,
    path::Path,
    sync::{Arc, OnceLock},
};

use anyhow::{Result, bail};
use postgres::Client;

use crate::{
    DatabaseUrl, Environment, Resolved, Settings,
    address::Endpoint,
    connect::Identity,
    matrix::{self, Access},
    selection,
    settings::EnvSettings,
};

mod beside;
mod databases;
pub mod op;
mod server;
mod targets;

pub use crate::restore_point::RestorePoint;
pub use beside::Beside;
pub use databases::TemplateReset;
pub use targets::BackupTaken;

/// The selected environment, its settings, and the authority to hand out targets.
#[derive(Debug)]
pub struct Guard {
    resolved: Resolved,
    settings: Settings,
    confirmed: bool,
    /// Set for a throwaway cluster: its connections must prove the server's data folder
    /// carries this marker file beside it.
    throwaway: bool,
    pin: Arc<OnceLock<Pin>>,
}

/// Where this command's database is, and who answered there first.
#[derive(Debug)]
struct Pin {
    endpoint: Endpoint,
    identity: Identity,
    /// A transaction pooler: server sessions are shared between clients.
    shared: bool,
}

/// Permission to write to one database for one operation.
#[derive(Debug)]
pub struct WriteTarget<O> {
    env: Environment,
    url: DatabaseUrl,
    access: Access,
    /// The environment's settings require a backup before this operation's changes
    /// (`require_backup`), and it is not a throwaway cluster; see [`WriteTarget::backed_up`].
    backup: bool,
    pin: Arc<OnceLock<Pin>>,
    _op: PhantomData<O>,
}

/// Permission to read one database for one operation.
#[derive(Debug)]
pub struct ReadTarget<O> {
    env: Environment,
    url: DatabaseUrl,
    pin: Arc<OnceLock<Pin>>,
    _op: PhantomData<O>,
}

/// An open connection to a database whose stamp matched (or that is empty, unstamped and
/// may be stamped by this operation's first change).
pub struct WriteConnection<O> {
    client: Client,
    env: Environment,
    pending: Option<PendingStamp>,
    _op: PhantomData<O>,
}

/// An open connection whose every read runs in a read-only transaction.
pub struct ReadConnection<O> {
    client: Client,
    pub stamp: Option<Environment>,
    _op: PhantomData<O>,
}

/// The stamp an empty, unstamped database gets inside the transaction of its first change.
#[derive(Clone, Debug)]
pub struct PendingStamp {
    env: Environment,
    by: String,
    at: String,
    /// Adopting a database that holds tables (`migrate baseline`): it need not be empty.
    adopting: bool,
}

/// How an external PostgreSQL program reaches exactly the checked server.
#[derive(Debug)]
pub struct ClientArgs {
    /// A libpq `key=value` string for `--dbname`; no password in it.
    pub conninfo: String,
    /// For `PGPASSWORD`, never argv.
    pub password: Option<String>,
}

/// Reads give up on a lock after this, local to their transaction.
const READ_LOCK_TIMEOUT: &str = "set local lock_timeout = '10s'";

/// The file beside a throwaway cluster's data folder that marks it as the project's own.
pub const THROWAWAY_MARKER: &str = "xtask-throwaway";

impl Guard {
    /// The environment selected by `--env` (`flag`), `APP_ENV`, detection or the default,
    /// from the project's `env/` folder under `root` and the process environment.
    pub fn select(root: &Path, flag: Option<Environment>) -> Result<Guard> {
        let settings = Settings::load(root)?;
        let resolved = selection::resolve(root, &settings, flag, &selection::process_env())?;
        Ok(Guard::new(resolved, settings))
    }

    /// The `test` guard of a throwaway cluster this project started on this machine. Every
    /// connection proves it: the server's own data folder must have the project's marker
    /// file beside it, which no tunnel or other server can show.
    pub fn throwaway(url: &str, settings: Settings) -> Result<Guard> {
        let resolved = Resolved::throwaway(url.parse()?)?;
        Ok(Guard { throwaway: true, ..Guard::new(resolved, settings) })
    }

    /// A production dump restored into a throwaway cluster this project started, as a
    /// read-only production source (`stage-sync --from-dump`); proven like
    /// [`throwaway`](Self::throwaway). `vars` are the source's variables (its sync key).
    pub fn restored_dump(
        url: &str,
        vars: std::collections::BTreeMap<String, String>,
        settings: Settings,
    ) -> Result<Guard> {
        let resolved = Resolved::restored_dump(url.parse()?, vars)?;
        Ok(Guard { throwaway: true, ..Guard::new(resolved, settings) })
    }

    fn new(resolved: Resolved, settings: Settings) -> Guard {
        Guard { resolved, settings, confirmed: false, throwaway: false, pin: Arc::default() }
    }

    pub fn environment(&self) -> Environment {
        self.resolved.environment
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    pub fn all_settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings(&self) -> &EnvSettings {
        self.settings.for_env(self.environment())
    }

    /// Records the user's typed confirmation; it must be the production project's ref.
    pub fn confirm(&mut self, typed: &str) -> Result<()> {
        let Some(expected) = self.settings.production_ref() else {
            bail!("no production project is registered in env/environments.toml, so nothing can confirm it");
        };
        if typed.trim() != expected {
            bail!(
                "confirmation does not match the production project ref\nhint: type the ref exactly, or pass --confirm {expected}"
            );
        }
        self.confirmed = true;
        Ok(())
    }

    /// Whether a write of this kind would need a typed confirmation first.
    pub fn needs_confirmation<O: op::WriteOp>(&self) -> bool {
        matrix::access(O::OPERATION, self.environment()) == Access::Confirmed
            && self.settings().require_confirmation
            && !self.confirmed
    }

    /// Whether the matrix and the environment's settings allow the operation here (a
    /// write that plants test data needs `allow_test_data`), before any connection: what
    /// [`write`](Self::write) or [`read`](Self::read) would say of the policy, short of
    /// confirmation and the URL.
    pub fn allows<O: op::Op>(&self) -> bool {
        let access = matrix::access(O::OPERATION, self.environment());
        let by_matrix = if O::WRITES { access.allows_writes() } else { access.allows_reads() };
        by_matrix && (O::TEST_DATA.is_none() || self.settings().allow_test_data)
    }

    /// A write target, if the matrix allows the operation here, and the environment's
    /// settings allow the test data it plants.
    pub fn write<O: op::WriteOp>(&self) -> Result<WriteTarget<O>> {
        let env = self.environment();
        let access = matrix::access(O::OPERATION, env);
        if !access.allows_writes() {
            bail!(
                "{} on {env} is refused: the access matrix says {}\nhint: `cargo xtask env matrix` shows what each environment allows",
                O::OPERATION,
                access.label()
            );
        }
        if self.needs_confirmation::<O>() {
            bail!("{} on {env} needs a typed confirmation of the project ref", O::OPERATION);
        }
        let url = self.resolved.database()?.clone();
        if let Some(problem) = url.write_problem() {
            bail!(
                "{problem}: {} refused\nhint: give DATABASE_URL exactly one host, without load_balance_hosts or target_session_attrs",
                O::OPERATION
            );
        }
        let pin = self.checked_pin()?;
        if let Some(refusal) = O::TEST_DATA.filter(|_| !self.settings().allow_test_data) {
            bail!("{}", refusal.replace("{env}", env.name()));
        }
        let backup = self.settings().require_backup && !self.throwaway;
        Ok(WriteTarget { env, url, access, backup, pin, _op: PhantomData })
    }

    /// A read target, if the matrix allows the operation here.
    pub fn read<O: op::ReadOp>(&self) -> Result<ReadTarget<O>> {
        let env = self.environment();
        let access = matrix::access(O::OPERATION, env);
        if !access.allows_reads() {
            bail!("{} on {env} is refused: the access matrix says {}", O::OPERATION, access.label());
        }
        let url = self.resolved.database()?.clone();
        Ok(ReadTarget { env, url, pin: self.checked_pin()?, _op: PhantomData })
    }

    /// The pin, after a throwaway guard's first connection has proven the cluster is ours.
    fn checked_pin(&self) -> Result<Arc<OnceLock<Pin>>> {
        if self.throwaway && self.pin.get().is_none() {
            let url = self.resolved.database()?;
            let mut client = server::open(url, &self.pin)?;
            server::prove_throwaway(&mut client, url)?;
        }
        Ok(self.pin.clone())
    }
}
