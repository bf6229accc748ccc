//! The guard: the only way to a database connection. It consults the access matrix for an
//! (operation, environment) pair and hands out a target typed by the operation; a write
//! target's connection checks the database's own stamp before anything is written.
//!
//! Code that writes takes a `WriteConnection<O>`, which nothing outside this module can
//! construct:
//!
//! ```compile_fail,E0451
//! use std::marker::PhantomData;
//! use app::{Environment, guard::{WriteTarget, op}, matrix::Access};
//! let url = "postgresql://postgres@db.yovbdmjwrrgardkgrenc.supabase.co/postgres".parse().unwrap();
//! // The fields are private: only the guard can make a target.
//! let target: WriteTarget<op::Seed> =
//!     WriteTarget { env: Environment::Test, url, access: Access::Yes, _op: PhantomData };
//! ```

use std::marker::PhantomData;

use anyhow::{Result, bail};
use postgres::Client;

use crate::{
    DatabaseUrl, Environment, Resolved, Settings, connect,
    matrix::{self, Access},
    settings::EnvSettings,
    stamp,
};

/// Operations as types, so that a function's signature says what it is allowed to do.
pub mod op {
    use crate::matrix::Operation;

    mod sealed {
        pub trait Sealed {}
    }

    pub trait Op: sealed::Sealed {
        const OPERATION: Operation;
    }

    /// Operations that write. `STAMPS`: whether it may stamp an unstamped, empty database
    /// (it creates or first migrates one).
    pub trait WriteOp: Op {
        const STAMPS: bool;
    }

    /// Operations that only read, through a read-only session.
    pub trait ReadOp: Op {}

    macro_rules! ops {
        ($($name:ident => $op:ident, $kind:ident $(($stamps:expr))?;)*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl sealed::Sealed for $name {}
            impl Op for $name { const OPERATION: Operation = Operation::$op; }
            ops!(@kind $name $kind $($stamps)?);
        )*};
        (@kind $name:ident write $stamps:expr) => { impl WriteOp for $name { const STAMPS: bool = $stamps; } };
        (@kind $name:ident read) => { impl ReadOp for $name {} };
    }

    ops! {
        Seed => Seed, write(false);
        Reset => Reset, write(true);
        Migrate => Migrate, write(true);
        MigrateDown => MigrateDown, write(false);
        RlsTesting => RlsTesting, write(false);
        LoadTesting => LoadTesting, write(false);
        StageSyncTarget => StageSyncTarget, write(false);
        StageSyncSource => StageSyncSource, read;
        Backup => Backup, read;
        Inspect => Inspect, read;
    }
}

/// The selected environment, its settings, and the authority to hand out targets.
#[derive(Debug)]
pub struct Guard {
    resolved: Resolved,
    settings: Settings,
    confirmed: bool,
}

/// Permission to write to one database for one operation.
#[derive(Debug)]
pub struct WriteTarget<O> {
    env: Environment,
    url: DatabaseUrl,
    access: Access,
    _op: PhantomData<O>,
}

/// Permission to read one database for one operation.
#[derive(Debug)]
pub struct ReadTarget<O> {
    env: Environment,
    url: DatabaseUrl,
    _op: PhantomData<O>,
}

/// An open connection to a database whose stamp matched.
pub struct WriteConnection<O> {
    client: Client,
    env: Environment,
    _op: PhantomData<O>,
}

/// An open read-only connection.
pub struct ReadConnection<O> {
    client: Client,
    pub stamp: Option<Environment>,
    _op: PhantomData<O>,
}

impl Guard {
    pub fn new(resolved: Resolved, settings: Settings) -> Guard {
        Guard { resolved, settings, confirmed: false }
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

    /// A write target, if the matrix allows the operation here.
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
        Ok(WriteTarget { env, url: self.resolved.database()?.clone(), access, _op: PhantomData })
    }

    /// A read target, if the matrix allows the operation here.
    pub fn read<O: op::ReadOp>(&self) -> Result<ReadTarget<O>> {
        let env = self.environment();
        let access = matrix::access(O::OPERATION, env);
        if !access.allows_reads() {
            bail!("{} on {env} is refused: the access matrix says {}", O::OPERATION, access.label());
        }
        Ok(ReadTarget { env, url: self.resolved.database()?.clone(), _op: PhantomData })
    }
}

impl<O: op::WriteOp> WriteTarget<O> {
    pub fn environment(&self) -> Environment {
        self.env
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The matrix says limited: the caller should say so.
    pub fn is_limited(&self) -> bool {
        self.access == Access::Limited
    }

    /// Connects and checks the stamp: it must name the selected environment. A database
    /// stamped production refuses every other environment's work whatever the URLs say; an
    /// unstamped remote database that holds tables counts as production.
    pub fn connect(&self) -> Result<WriteConnection<O>> {
        let mut client = connect::open(&self.url)?;
        check_stamp::<O>(&mut client, self.env, &self.url)?;
        Ok(WriteConnection { client, env: self.env, _op: PhantomData })
    }
}

impl WriteTarget<op::Reset> {
    /// Drops and re-creates the target database (after its stamp allowed it), then stamps
    /// the new one. Connects to `template1` for the drop, as `dropdb` does.
    pub fn recreate(&self) -> Result<WriteConnection<op::Reset>> {
        {
            let mut client = connect::open(&self.url)?;
            check_stamp::<op::Reset>(&mut client, self.env, &self.url)?;
        }
        let dbname = self.url.dbname().to_string();
        let mut maintenance = connect::open(&self.url.with_dbname("template1"))?;
        let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
        maintenance.batch_execute(&format!("drop database if exists {quoted} with (force)"))?;
        maintenance.batch_execute(&format!("create database {quoted}"))?;
        self.connect()
    }
}

impl<O: op::ReadOp> ReadTarget<O> {
    pub fn environment(&self) -> Environment {
        self.env
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Connects with `default_transaction_read_only` on and checked, so that no statement
    /// in this session can write, even by mistake.
    pub fn connect(&self) -> Result<ReadConnection<O>> {
        self.open(&self.url)
    }

    /// [`connect`](Self::connect), giving up after `timeout`.
    pub fn connect_with_timeout(&self, timeout: std::time::Duration) -> Result<ReadConnection<O>> {
        self.open(&self.url.with_connect_timeout(timeout))
    }

    fn open(&self, url: &DatabaseUrl) -> Result<ReadConnection<O>> {
        let mut client = connect::open(url)?;
        client.batch_execute("set session default_transaction_read_only = on")?;
        let read_only: String = client.query_one("show default_transaction_read_only", &[])?.get(0);
        if read_only != "on" {
            bail!("the server at {} did not accept a read-only session", self.url.address());
        }
        let stamp = stamp::read(&mut client)?;
        Ok(ReadConnection { client, stamp, _op: PhantomData })
    }
}

impl<O> WriteConnection<O> {
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn environment(&self) -> Environment {
        self.env
    }
}

impl<O> ReadConnection<O> {
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

fn check_stamp<O: op::WriteOp>(client: &mut Client, env: Environment, url: &DatabaseUrl) -> Result<()> {
    let operation = O::OPERATION;
    let at = url.address();
    match stamp::read(client)? {
        Some(stamp) if stamp == env => Ok(()),
        Some(Environment::Production) => bail!(
            "the database at {at} is stamped production: {operation} refused, although {env} was selected\nhint: this database holds production data; point DATABASE_URL elsewhere"
        ),
        Some(stamp) => bail!(
            "the database at {at} is stamped {stamp}, not {env}: {operation} refused\nhint: select --env {stamp}, or point DATABASE_URL at the {env} database"
        ),
        None => {
            let empty = stamp::is_empty(client)?;
            if !empty && !url.is_on_this_machine() && env != Environment::Production {
                bail!(
                    "the database at {at} has no environment stamp but holds tables: an unstamped remote database counts as production, so {operation} is refused\nhint: check DATABASE_URL; a remote database is stamped by its first `cargo xtask migrate up`, while it is still empty"
                );
            }
            if !O::STAMPS {
                bail!(
                    "the database at {at} has no environment stamp: {operation} refused\nhint: `cargo xtask migrate up --env {env}` (or `cargo xtask db up` for local) creates and stamps it"
                );
            }
            stamp::write(client, env, &format!("{operation}"))
        }
    }
}
