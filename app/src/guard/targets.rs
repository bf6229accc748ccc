//! What the guard hands out: write and read targets, typed by the operation, and their
//! connections. A write connection exists only after the database's stamp was checked;
//! a read connection runs every query in a read-only transaction. A migration's changes
//! need the [`BackupTaken`] receipt the target gives once the environment's backup rule
//! is met.

use std::marker::PhantomData;

use anyhow::{Context, Result, bail};
use postgres::{Client, IsolationLevel, Transaction};

use super::{
    ClientArgs, PendingStamp, READ_LOCK_TIMEOUT, ReadConnection, ReadTarget, WriteConnection, WriteTarget, op,
    server::{client_args, open, refuse_shared},
};
use crate::{DatabaseUrl, Environment, address::Endpoint, connect::Identity, matrix::Access, stamp};

/// Proof that the environment's backup rule was met before a migration's changes: the
/// backup taken, or none because the settings require none. Only
/// [`WriteTarget::backed_up`] makes one.
#[derive(Debug)]
pub struct BackupTaken<B> {
    file: Option<B>,
}

impl<B> BackupTaken<B> {
    /// The backup, where the settings required one.
    pub fn file(&self) -> Option<&B> {
        self.file.as_ref()
    }
}

impl<O: op::WriteOp> WriteTarget<O> {
    /// Meets the environment's backup rule before migrations change anything: `take`
    /// (which makes and verifies the backup) runs when the settings say
    /// `require_backup = true` (never for a throwaway cluster), and its receipt is what
    /// applying migrations demands.
    pub fn backed_up<B>(&self, take: impl FnOnce() -> Result<B>) -> Result<BackupTaken<B>> {
        let file = if self.backup { Some(take()?) } else { None };
        Ok(BackupTaken { file })
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
