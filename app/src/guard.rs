//! The guard: the only way to a database connection. It consults the access matrix for an
//! (operation, environment) pair and hands out a target typed by the operation; a write
//! target's connection checks the database's own stamp before anything is written.
//!
//! One command, one server: the first connection pins the endpoint it reached and the
//! server's [`Identity`]; every later connection of the same guard (a second session, a
//! `pg_dump`) goes to that endpoint only and must show the same identity.
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
//!     WriteTarget { env: Environment::Test, url, access: Access::Yes, pin: Default::default(), _op: PhantomData };
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

use anyhow::{Context, Result, bail};
use postgres::{Client, IsolationLevel, Transaction};

use crate::{
    DatabaseUrl, Environment, Resolved, Settings,
    address::Endpoint,
    connect::{self, Identity},
    matrix::{self, Access},
    selection,
    settings::EnvSettings,
    stamp,
};

mod beside;
mod databases;

pub use crate::restore_point::RestorePoint;
pub use beside::Beside;
pub use databases::TemplateReset;

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

    /// Operations that only read, in read-only transactions. `SESSION`: it needs a server
    /// session of its own (a snapshot across statements, a client program that sets
    /// session state), so a transaction pooler is refused.
    pub trait ReadOp: Op {
        const SESSION: bool;
    }

    macro_rules! ops {
        ($($name:ident => $op:ident, $kind:ident($flag:expr);)*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl sealed::Sealed for $name {}
            impl Op for $name { const OPERATION: Operation = Operation::$op; }
            ops!(@kind $name $kind $flag);
        )*};
        (@kind $name:ident write $stamps:expr) => { impl WriteOp for $name { const STAMPS: bool = $stamps; } };
        (@kind $name:ident read $session:expr) => { impl ReadOp for $name { const SESSION: bool = $session; } };
    }

    ops! {
        Seed => Seed, write(false);
        Reset => Reset, write(true);
        Undo => Undo, write(false);
        Migrate => Migrate, write(true);
        MigrateDown => MigrateDown, write(false);
        Baseline => Baseline, write(true);
        RlsTesting => RlsTesting, write(false);
        LoadTesting => LoadTesting, write(false);
        StageSyncTarget => StageSyncTarget, write(false);
        StageSyncSource => StageSyncSource, read(true);
        Backup => Backup, read(true);
        Inspect => Inspect, read(false);
    }
}

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
        let url = self.resolved.database()?.clone();
        if let Some(problem) = url.write_problem() {
            bail!(
                "{problem}: {} refused\nhint: give DATABASE_URL exactly one host, without load_balance_hosts or target_session_attrs",
                O::OPERATION
            );
        }
        Ok(WriteTarget { env, url, access, pin: self.checked_pin()?, _op: PhantomData })
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
            let mut client = open(url, &self.pin)?;
            prove_throwaway(&mut client, url)?;
        }
        Ok(self.pin.clone())
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

    /// What the server said of itself on this command's first connection.
    pub fn identity(&self) -> Option<&Identity> {
        self.pin.get().map(|p| &p.identity)
    }

    /// Connects to the pinned server and checks the stamp: it must name the selected
    /// environment. A database stamped production refuses every other environment's work
    /// whatever the URLs say; an unstamped database that holds tables is not this
    /// project's, wherever it is, and is never written.
    pub fn connect(&self) -> Result<WriteConnection<O>> {
        let mut client = open(&self.url, &self.pin)?;
        refuse_shared::<O>(&self.pin, "it needs a server session of its own")?;
        let pending = check_stamp::<O>(&mut client, self.env, &self.url)?;
        Ok(WriteConnection { client, env: self.env, pending, _op: PhantomData })
    }

    /// How an external program (`pg_dump`, `pg_restore`, `psql`) reaches the same server.
    pub fn client_args(&self) -> Result<ClientArgs> {
        client_args::<O>(&self.url, &self.pin)
    }
}

impl<O: op::ReadOp> ReadTarget<O> {
    pub fn environment(&self) -> Environment {
        self.env
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// What the server said of itself on this command's first connection.
    pub fn identity(&self) -> Option<&Identity> {
        self.pin.get().map(|p| &p.identity)
    }

    /// Whether the pinned server session is shared between clients (a transaction pooler),
    /// once a connection has found out.
    pub fn shares_sessions(&self) -> Option<bool> {
        self.pin.get().map(|p| p.shared)
    }

    /// The endpoint this command's connections are pinned to, once one has connected.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.pin.get().map(|p| &p.endpoint)
    }

    /// Connects to the pinned server. No session state is set: every read goes through
    /// [`ReadConnection::transaction`], read-only, so a shared server session is left as
    /// it was found.
    pub fn connect(&self) -> Result<ReadConnection<O>> {
        self.open(&self.url)
    }

    /// [`connect`](Self::connect), giving up after `timeout`.
    pub fn connect_with_timeout(&self, timeout: std::time::Duration) -> Result<ReadConnection<O>> {
        self.open(&self.url.with_connect_timeout(timeout))
    }

    /// How an external program (`pg_dump`) reaches the same server.
    pub fn client_args(&self) -> Result<ClientArgs> {
        client_args::<O>(&self.url, &self.pin)
    }

    fn open(&self, url: &DatabaseUrl) -> Result<ReadConnection<O>> {
        let client = open(url, &self.pin)?;
        if O::SESSION {
            refuse_shared::<O>(&self.pin, "it needs a server session of its own")?;
        }
        let mut conn = ReadConnection { client, stamp: None, _op: PhantomData };
        let mut tx = conn.transaction()?;
        let read_only: String = tx.query_one("show transaction_read_only", &[])?.get(0);
        if read_only != "on" {
            bail!("the server at {} did not start a read-only transaction", url.address());
        }
        let stamp = stamp::read(&mut tx)?;
        tx.commit()?;
        conn.stamp = stamp;
        Ok(conn)
    }
}

impl<O: op::WriteOp> WriteConnection<O> {
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn environment(&self) -> Environment {
        self.env
    }

    /// The stamp this database still needs, if it is unstamped and empty: write it with
    /// [`PendingStamp::write`] inside the transaction of the first change.
    pub fn pending_stamp(&self) -> Option<PendingStamp> {
        self.pending.clone()
    }
}

impl PendingStamp {
    /// Writes the stamp inside `tx`, after checking there that the database is still
    /// unstamped and empty; a no-op once this environment's stamp is there.
    pub fn write(&self, tx: &mut Transaction<'_>) -> Result<()> {
        let at = &self.at;
        match stamp::read(tx)? {
            Some(found) if found == self.env => Ok(()),
            Some(found) => bail!("the database at {at} was stamped {found} meanwhile: {} refused", self.by),
            None => {
                if let Some(found) = if self.adopting { None } else { stamp::what_it_holds(tx)? } {
                    bail!("the unstamped database at {at} came to hold {found} meanwhile: {} is refused", self.by);
                }
                stamp::write(tx, self.env, &self.by)
            }
        }
    }
}

impl<O> ReadConnection<O> {
    /// A read-only transaction: the only way to run a query on a read connection. A lock
    /// held elsewhere (a migration, a forgotten psql) is waited for 10 s at most.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        let mut tx =
            self.client.build_transaction().read_only(true).start().context("cannot start a read-only transaction")?;
        tx.batch_execute(READ_LOCK_TIMEOUT)?;
        Ok(tx)
    }

    /// A read-only, repeatable-read transaction: one snapshot for many statements.
    pub fn snapshot(&mut self) -> Result<Transaction<'_>> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .context("cannot start a read-only snapshot")?;
        tx.batch_execute(READ_LOCK_TIMEOUT)?;
        Ok(tx)
    }
}

/// A connection to the pinned endpoint that must show the pinned identity; the first one
/// pins what it reached, and finds out whether the server session is shared.
fn open(url: &DatabaseUrl, pin: &OnceLock<Pin>) -> Result<Client> {
    if let Some(pinned) = pin.get() {
        let opened = connect::open_at(url, &pinned.endpoint, url.startup_timeout())?;
        if opened.identity != pinned.identity {
            bail!(
                "the server at {} is not the one this command checked a moment ago (it reports another {}): refused\nhint: something between here and the database changed (a tunnel, a proxy, a failover); run the command again",
                pinned.endpoint,
                differs(&pinned.identity, &opened.identity)
            );
        }
        return Ok(opened.client);
    }
    let mut opened = connect::open_first(url)?;
    refuse_twins(url, &opened)?;
    let shared =
        url.pooler() == Some(crate::database_url::Pooler::Transaction) || connect::shares_sessions(url, &mut opened)?;
    let _ = pin.set(Pin { endpoint: opened.endpoint.clone(), identity: opened.identity.clone(), shared });
    Ok(opened.client)
}

/// A name that resolves to several addresses is one server only if every address that
/// answers shows the same identity: `localhost` can be `::1` and `127.0.0.1`, with two
/// servers on one port.
fn refuse_twins(url: &DatabaseUrl, first: &connect::Opened) -> Result<()> {
    let Endpoint::Tcp { name, .. } = &first.endpoint else { return Ok(()) };
    let timeout = url.startup_timeout().min(std::time::Duration::from_secs(2));
    for other in url.endpoints() {
        let twin = matches!(&other, Endpoint::Tcp { name: n, .. } if n == name) && other != first.endpoint;
        if !twin {
            continue;
        }
        if let Ok(answer) = connect::open_at(url, &other, timeout) {
            if answer.identity != first.identity {
                bail!(
                    "{name} resolves to several addresses where different servers answer ({} and {}): refused\nhint: put the one address you mean in DATABASE_URL",
                    first.endpoint,
                    other
                );
            }
        }
    }
    Ok(())
}

fn differs(a: &Identity, b: &Identity) -> &'static str {
    if a.system != b.system {
        "system identifier"
    } else if a.started != b.started {
        "start time"
    } else {
        "database"
    }
}

fn refuse_shared<O: op::Op>(pin: &OnceLock<Pin>, why: &str) -> Result<()> {
    let Some(pinned) = pin.get().filter(|p| p.shared) else { return Ok(()) };
    bail!(
        "{} hands one server session to several clients (a transaction pooler): {} is refused, {why}\nhint: use the direct host (db.<ref>.supabase.co:5432) or the pooler's session mode (port 5432) for this command",
        pinned.endpoint,
        O::OPERATION
    )
}

fn client_args<O: op::Op>(url: &DatabaseUrl, pin: &OnceLock<Pin>) -> Result<ClientArgs> {
    if pin.get().is_none() {
        drop(open(url, pin)?);
    }
    refuse_shared::<O>(pin, "because client programs set session state that the pooler would hand to other clients")?;
    let pinned = pin.get().context("no pinned server")?;
    Ok(ClientArgs { conninfo: url.conninfo_for(&pinned.endpoint), password: url.password() })
}

/// A throwaway cluster shows it is the project's own: its data folder's parent holds the
/// marker file that the project writes when it creates such a cluster.
fn prove_throwaway(client: &mut Client, url: &DatabaseUrl) -> Result<()> {
    let refused = || {
        anyhow::anyhow!(
            "the server at {} is not a throwaway cluster this project started: refused\nhint: throwaway guards are for the clusters that tests and benchmarks start themselves",
            url.address()
        )
    };
    let rows = client.simple_query("select current_setting('data_directory')").map_err(|_| refused())?;
    let data_dir = rows
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(std::path::PathBuf::from),
            _ => None,
        })
        .ok_or_else(refused)?;
    let marker = data_dir.parent().map(|p| p.join(THROWAWAY_MARKER));
    if !url.is_on_this_machine() || !marker.is_some_and(|m| m.is_file()) {
        return Err(refused());
    }
    Ok(())
}

fn check_stamp<O: op::WriteOp>(
    client: &mut Client,
    env: Environment,
    url: &DatabaseUrl,
) -> Result<Option<PendingStamp>> {
    let operation = O::OPERATION;
    let at = url.address();
    match stamp::read(client)? {
        Some(stamp) if stamp == env => Ok(None),
        Some(Environment::Production) => bail!(
            "the database at {at} is stamped production: {operation} refused, although {env} was selected\nhint: this database holds production data; point DATABASE_URL elsewhere"
        ),
        Some(stamp) => bail!(
            "the database at {at} is stamped {stamp}, not {env}: {operation} refused\nhint: select --env {stamp}, or point DATABASE_URL at the {env} database"
        ),
        None => {
            // Adopting is the one explicit, confirmed way a database that holds tables
            // becomes this project's.
            let adopting = operation == crate::matrix::Operation::Baseline;
            if let Some(found) = if adopting { None } else { stamp::what_it_holds(client)? } {
                bail!(
                    "the database at {at} has no environment stamp but holds tables or data of its own ({found}): it is not this project's, so {operation} is refused, wherever it is\nhint: point DATABASE_URL at a database this project created, or at an empty one; an existing database is taken over only by an explicit, confirmed `cargo xtask migrate baseline`"
                );
            }
            if !O::STAMPS {
                bail!("the database at {at} has no environment stamp: {operation} refused\nhint: {}", stamp::hint(env));
            }
            Ok(Some(PendingStamp { env, by: operation.to_string(), at, adopting }))
        }
    }
}
