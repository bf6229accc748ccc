//! What the guard does to whole databases, on the target's server: a reset in place, a
//! reset from a template (clone, swap) and restore points (keep one, undo). Every one of
//! them first checks the target's stamp like any write, and reaches other databases only
//! through a maintenance connection that shows the pinned server's identity.

use anyhow::{Context, Result, bail};
use postgres::{Client, Transaction};

use super::{WriteConnection, WriteTarget, op, server::differs};
use crate::{
    connect,
    restore_point::{self, RestorePoint},
    sql::{ident, literal},
    stamp, template,
};

impl WriteTarget<op::Reset> {
    /// Empties the target database in place and rebuilds it from `bootstrap` (SQL), then
    /// stamps it, all in one transaction on one connection: no second connection that could
    /// reach another server, and a reset that fails leaves the database as it was.
    pub fn reset_in_place(&self, bootstrap: &str) -> Result<WriteConnection<op::Reset>> {
        self.reset_in_place_marked(bootstrap, None).map(|(conn, _)| conn)
    }

    /// [`reset_in_place`](Self::reset_in_place); with `mark`, the database's comment is
    /// set back to it in the same transaction (a build database stays recognisable as
    /// scratch at every moment), and the comment the bootstrap gave is returned.
    pub(super) fn reset_in_place_marked(
        &self,
        bootstrap: &str,
        mark: Option<&str>,
    ) -> Result<(WriteConnection<op::Reset>, Option<String>)> {
        let mut conn = self.connect()?;
        let env = self.env;
        let mut tx = conn.client.transaction()?;
        // Another session holding a lock (the app, a psql) would make the drops wait for
        // ever: give up instead, with the database as it was.
        tx.batch_execute("set local lock_timeout = '10s'")?;
        let emptying = empty_database_sql(&mut tx)?;
        tx.batch_execute(&emptying).map_err(|err| {
            anyhow::anyhow!(
                "cannot empty the database: {}\nhint: another session may hold locks on it (a running app, a psql); stop it and reset again. Nothing was changed",
                connect::error_chain(&err)
            )
        })?;
        tx.batch_execute(bootstrap)
            .map_err(|err| anyhow::anyhow!("the bootstrap SQL failed: {}", connect::error_chain(&err)))?;
        stamp::write(&mut tx, env, &<op::Reset as op::Op>::OPERATION.to_string())?;
        let mut given = None;
        if let Some(mark) = mark {
            let row = tx.query_one(
                "select datname::text, shobj_description(oid, 'pg_database') from pg_database where datname = current_database()",
                &[],
            )?;
            given = row.get(1);
            let name: String = row.get(0);
            tx.batch_execute(&format!(
                "comment on database {} is {}",
                crate::sql::ident(&name),
                crate::sql::literal(mark)
            ))?;
        }
        tx.commit().context("cannot commit the reset; the database is as it was")?;
        conn.pending = None;
        Ok((conn, given))
    }
}

/// What [`WriteTarget::<op::Reset>::reset_from_template`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateReset {
    /// The database was replaced by a clone of a template made with the same key. This
    /// guard's connections are pinned to the database that was replaced: the command is done.
    Cloned,
    /// No template with this key: rebuild, then [`WriteTarget::refresh_template`].
    Miss,
    /// A clone cannot be swapped in safely, for this reason: rebuild in place, as before.
    Unsafe(String),
}

impl WriteTarget<op::Reset> {
    /// Replaces the target database with a clone of its template when the template was
    /// made with `key`. Before anything changes: the target's stamp is checked (as for
    /// every write), and the maintenance connection the clone needs (to another database on
    /// the pinned endpoint) must show the pinned server's system identifier and start time.
    /// The clone must carry this environment's stamp, and is swapped in by renames in one
    /// transaction, so there is never a moment without a database under the target's name;
    /// the swap is refused while anyone else is connected to the target. With `keep`, the
    /// replaced database becomes the target's restore point (see `db undo`).
    pub fn reset_from_template(&self, key: &str, keep: bool) -> Result<TemplateReset> {
        let (names, mut maintenance) = match self.prepare_template()? {
            Ok(prepared) => prepared,
            Err(why) => return Ok(TemplateReset::Unsafe(why)),
        };
        if template::template_key(&mut maintenance, &names)?.as_deref() != Some(key) {
            return Ok(TemplateReset::Miss);
        }
        let others = template::other_sessions(&mut maintenance, &names.target)?;
        if others > 0 {
            return Ok(TemplateReset::Unsafe(format!("{others} other session(s) are connected to {}", names.target)));
        }
        self.mark_interrupted_clone(&mut maintenance, &names)?;
        if let Some(why) = self.clear_scratch(&mut maintenance, &names)? {
            return Ok(TemplateReset::Unsafe(why));
        }
        if let Some(why) = if keep { self.restore_slot_refused(&mut maintenance, &names)? } else { None } {
            return Ok(TemplateReset::Unsafe(why));
        }
        template::clone_template(&mut maintenance, &names)?;
        let stamp = match self.same_server(&names.fresh)? {
            Ok(mut clone) => stamp::read(&mut clone)?,
            Err(why) => bail!("cannot read the stamp of the clone {}: {why}", names.fresh),
        };
        if stamp != Some(self.env) {
            template::drop_clone(&mut maintenance, &names)?;
            bail!(
                "the template {} is stamped {}, not {}: not swapped in\nhint: drop the template database; the next reset rebuilds it",
                names.template,
                stamp.map_or("(unstamped)".to_string(), |s| s.to_string()),
                self.env
            );
        }
        let away = if keep {
            Some(restore_point::replace_with_target_sql(&mut maintenance, &names, "db reset")?)
        } else {
            None
        };
        Ok(match template::swap(&mut maintenance, &names, away)? {
            None => TemplateReset::Cloned,
            Some(why) => TemplateReset::Unsafe(why),
        })
    }

    /// Makes the target's template anew from the target as it is now (just rebuilt), keyed
    /// by `key`, on a maintenance connection proven to reach the pinned server. Every
    /// connection of this command to the target must be closed.
    pub fn refresh_template(&self, key: &str) -> Result<()> {
        let (names, mut maintenance) = self.prepare_template()?.map_err(anyhow::Error::msg)?;
        // The stamp check's session, just closed, ends asynchronously: the copy needs it gone.
        template::other_sessions(&mut maintenance, &names.target)?;
        if template::exists(&mut maintenance, &names.template)? {
            if let Err(why) = self.stamped_ours(&mut maintenance, &names.template)? {
                bail!("{why}: the template is not refreshed\nhint: drop or rename it if it is not yours");
            }
        }
        template::refresh(&mut maintenance, &names, key)
    }

    /// Drops the database the last template reset swapped out, after the same checks as
    /// the reset itself (the target's stamp, the maintenance connection's server).
    pub fn drop_replaced(&self) -> Result<()> {
        let (names, mut maintenance) = self.prepare_template()?.map_err(anyhow::Error::msg)?;
        if template::comment_of(&mut maintenance, &names.old)?.as_deref() == Some(template::SCRATCH_MARK) {
            self.stamped_ours(&mut maintenance, &names.old)?.map_err(anyhow::Error::msg)?;
        }
        template::drop_replaced(&mut maintenance, &names)
    }
}

impl WriteTarget<op::Undo> {
    /// Copies the target, as it is now, to its restore point before a command rewrites it
    /// in place (`seed --replace`, a `db reset` that rebuilds). `Some(why)` when none could
    /// be kept (someone else is connected, a database not ours holds the name, no
    /// maintenance connection): nothing changed, and the command may go on without one.
    pub fn keep_restore_point(&self, replaced_by: &str) -> Result<Option<String>> {
        let (names, mut maintenance) = match self.prepare_template()? {
            Ok(prepared) => prepared,
            Err(why) => return Ok(Some(why)),
        };
        self.mark_interrupted_clone(&mut maintenance, &names)?;
        if let Some(why) = self.clear_scratch(&mut maintenance, &names)? {
            return Ok(Some(why));
        }
        if let Some(why) = self.restore_slot_refused(&mut maintenance, &names)? {
            return Ok(Some(why));
        }
        let others = template::other_sessions(&mut maintenance, &names.target)?;
        if others > 0 {
            return Ok(Some(format!("{others} other session(s) are connected to {}", names.target)));
        }
        restore_point::copy_target(&mut maintenance, &names, replaced_by)
    }

    /// Swaps the restore point back in, after checking it carries this environment's stamp;
    /// the state it replaces becomes the restore point, so a second undo is a redo. Returns
    /// what the restored state was. Refused, changing nothing, while anyone else is
    /// connected to the target.
    pub fn undo(&self) -> Result<RestorePoint> {
        let (names, mut maintenance) = self.prepare_template()?.map_err(anyhow::Error::msg)?;
        if restore_point::find(&mut maintenance, &names)?.is_none() {
            bail!("{}", restore_point::no_restore_point(&names));
        }
        if let Some(why) = self.clear_scratch(&mut maintenance, &names)? {
            bail!("{why}: nothing was undone");
        }
        restore_point::allow_connections(&mut maintenance, &names, true)?;
        let found = match self.same_server(&names.restore)? {
            Ok(mut client) => stamp::read(&mut client),
            Err(why) => Err(anyhow::anyhow!("cannot read the stamp of the restore point {}: {why}", names.restore)),
        };
        if !matches!(found, Ok(Some(env)) if env == self.env) {
            restore_point::allow_connections(&mut maintenance, &names, false)?;
            let found = found?.map_or("(unstamped)".to_string(), |s| s.to_string());
            bail!(
                "the restore point {} is stamped {found}, not {}: not swapped in\nhint: drop that database by hand if it is not yours",
                names.restore,
                self.env
            );
        }
        let others = template::other_sessions(&mut maintenance, &names.target)?;
        if others > 0 {
            restore_point::allow_connections(&mut maintenance, &names, false)?;
            bail!(
                "{others} other session(s) are connected to {}: nothing was undone\nhint: close them (the app, a psql) and run `cargo xtask db undo` again",
                names.target
            );
        }
        template::other_sessions(&mut maintenance, &names.restore)?;
        let undone = restore_point::undo(&mut maintenance, &names);
        if undone.is_err() {
            // Someone got into it while it was open for the stamp's read: closed again.
            let _ = restore_point::allow_connections(&mut maintenance, &names, false);
        }
        undone
    }
}

impl<O: op::WriteOp> WriteTarget<O> {
    /// [`prepare_maintenance`](Self::prepare_maintenance), then the lock that one command
    /// at a time holds on the target and the databases beside it ([`template::lock`]),
    /// kept as long as the maintenance connection: refused when another command holds it.
    pub(super) fn prepare_template(&self) -> Result<Result<(template::Names, Client), String>> {
        let mut prepared = self.prepare_maintenance()?;
        if let Ok((names, maintenance)) = &mut prepared {
            template::lock(maintenance, names)?;
        }
        Ok(prepared)
    }

    /// Checks the target's stamp and reads its name, then opens the maintenance connection
    /// (to `postgres`, or `template1` when the target is `postgres`); or why there can be
    /// none, which is no reason to fail a reset.
    fn prepare_maintenance(&self) -> Result<Result<(template::Names, Client), String>> {
        let target: String = {
            let mut conn = self.connect()?;
            conn.client.query_one("select current_database()::text", &[])?.get(0)
        };
        if self.identity().is_none_or(|identity| identity.system.is_none()) {
            return Ok(Err("the server does not show its system identifier to this login".into()));
        }
        let Some(names) = template::Names::for_target(&target) else {
            return Ok(Err("the database's name is too long for a template beside it".into()));
        };
        let maintenance = if target == "postgres" { "template1" } else { "postgres" };
        Ok(self
            .same_server(maintenance)?
            .map(|client| (names, client))
            .map_err(|why| format!("no maintenance connection to database {maintenance} ({why})")))
    }

    /// A clone that a killed command made but had not yet marked as scratch (the kill fell
    /// between its `CREATE DATABASE` and the comment) has no comment. It is the project's by
    /// its stamp, this environment's, copied from the template: marked as scratch here, so
    /// that `clear_scratch` drops it instead of refusing the name. A database under that
    /// name without our stamp stays untouched (and refused).
    pub(super) fn mark_interrupted_clone(&self, maintenance: &mut Client, names: &template::Names) -> Result<()> {
        if !template::exists(maintenance, &names.fresh)? || template::comment_of(maintenance, &names.fresh)?.is_some() {
            return Ok(());
        }
        let ours = match self.same_server(&names.fresh)? {
            Ok(mut clone) => matches!(stamp::read(&mut clone), Ok(Some(env)) if env == self.env),
            Err(_) => false,
        };
        if ours {
            let sql = format!("comment on database {} is {}", ident(&names.fresh), literal(template::SCRATCH_MARK));
            template::run(maintenance, &sql, "cannot mark an interrupted clone as scratch")?;
        }
        Ok(())
    }

    /// Drops the scratch databases a killed command left ([`template::clear_scratch`]), each
    /// after [`stamped_ours`](Self::stamped_ours): its comment alone, which its owner can
    /// write on any database, never gets a database dropped. `Some(why)`: nothing dropped.
    pub(super) fn clear_scratch(&self, maintenance: &mut Client, names: &template::Names) -> Result<Option<String>> {
        for name in [&names.fresh, &names.old] {
            if template::comment_of(maintenance, name)?.as_deref() != Some(template::SCRATCH_MARK) {
                continue;
            }
            if let Err(why) = self.stamped_ours(maintenance, name)? {
                return Ok(Some(why));
            }
        }
        template::clear_scratch(maintenance, names)
    }

    /// Why the target cannot become the restore point: a database not ours holds its name,
    /// by its comment and owner ([`restore_point::slot_taken`]) or by its stamp (the one
    /// there would be renamed to scratch and dropped).
    pub(super) fn restore_slot_refused(
        &self,
        maintenance: &mut Client,
        names: &template::Names,
    ) -> Result<Option<String>> {
        if let Some(why) = restore_point::slot_taken(maintenance, names)? {
            return Ok(Some(why));
        }
        if !template::exists(maintenance, &names.restore)? {
            return Ok(None);
        }
        Ok(self.stamped_ours(maintenance, &names.restore)?.err())
    }

    /// Whether a database beside the target, marked as the project's by its comment, is the
    /// project's by its own stamp too: this environment's, or none on a database that holds
    /// nothing. A database closed to connections (a restore point, a template) is opened for
    /// the read and closed again. `Err(why)`: not ours, not to be dropped or renamed.
    pub(super) fn stamped_ours(&self, maintenance: &mut Client, name: &str) -> Result<Result<(), String>> {
        let closed: bool = maintenance
            .query_one("select not datallowconn from pg_database where datname = $1", &[&name])
            .context("cannot read whether a database takes connections")?
            .get(0);
        let toggle = |client: &mut Client, allow: bool| {
            let sql = format!("alter database {} with allow_connections {allow}", ident(name));
            template::run(client, &sql, "cannot open a database beside the target to read its stamp")
        };
        if closed {
            toggle(maintenance, true)?;
        }
        let found = match self.same_server(name) {
            Ok(Ok(mut client)) => stamp::read(&mut client).and_then(|stamp| match stamp {
                Some(env) => Ok(Some(env.to_string()).filter(|_| env != self.env)),
                None => Ok(stamp::what_it_holds(&mut client)?.map(|holds| format!("(unstamped, holding {holds})"))),
            }),
            Ok(Err(why)) => Ok(Some(format!("(unreadable: {why})"))),
            Err(err) => Err(err),
        };
        if closed {
            toggle(maintenance, false)?;
        }
        Ok(match found? {
            None => Ok(()),
            Some(stamp) => Err(format!(
                "the database {name}, marked as this project's, is stamped {stamp}, not {}: not dropped or renamed",
                self.env
            )),
        })
    }

    /// A connection to another database on the pinned endpoint (or why none opened),
    /// refused unless it shows the pinned server's system identifier and start time: a proxy
    /// that routes database names to different servers must not get a `CREATE DATABASE` or
    /// a rename.
    fn same_server(&self, dbname: &str) -> Result<Result<Client, String>> {
        let pinned = self.pin.get().context("no pinned server")?;
        let url = self.url.with_dbname(dbname);
        let opened = match connect::open_at(&url, &pinned.endpoint, url.startup_timeout()) {
            Ok(opened) => opened,
            Err(err) => return Ok(Err(format!("{err:#}").lines().next().unwrap_or_default().to_string())),
        };
        let (checked, other) = (&pinned.identity, &opened.identity);
        if checked.system.is_none() || checked.system != other.system || checked.started != other.started {
            bail!(
                "the server at {} answering for database {dbname} is not the one this command checked (it reports another {}): the reset from a template is refused\nhint: something routes database names to different servers (a proxy?); point DATABASE_URL at the server itself",
                pinned.endpoint,
                differs(checked, other)
            );
        }
        let mut client = opened.client;
        // A killed command's `CREATE DATABASE` is then cancelled by the server within 50 ms
        // (the copy removed), instead of leaving an unmarked database behind. Servers
        // before 14 lack the setting: the copy then finishes, unmarked.
        let _ = client.batch_execute("set client_connection_check_interval = 50");
        Ok(Ok(client))
    }
}

/// The statements that take a database back to empty, as `CREATE DATABASE` makes it:
/// every schema but the system's dropped (with what is in them), every extension,
/// publication and event trigger dropped, database settings reset, `public` re-created.
fn empty_database_sql(tx: &mut Transaction<'_>) -> Result<String> {
    let names = |tx: &mut Transaction<'_>, sql: &str| -> Result<Vec<String>> {
        Ok(tx.query(sql, &[])?.iter().map(|r| r.get::<_, String>(0)).collect())
    };
    let mut sql = String::new();
    for name in names(tx, "select quote_ident(evtname) from pg_event_trigger")? {
        sql.push_str(&format!("drop event trigger if exists {name} cascade;\n"));
    }
    for name in names(tx, "select quote_ident(pubname) from pg_publication")? {
        sql.push_str(&format!("drop publication if exists {name};\n"));
    }
    for name in names(tx, "select quote_ident(extname) from pg_extension where extname <> 'plpgsql'")? {
        sql.push_str(&format!("drop extension if exists {name} cascade;\n"));
    }
    for name in names(
        tx,
        "select quote_ident(nspname) from pg_namespace
         where nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_toast%'
           and nspname not like 'pg\\_temp\\_%'",
    )? {
        sql.push_str(&format!("drop schema if exists {name} cascade;\n"));
    }
    sql.push_str("select lo_unlink(oid) from pg_largeobject_metadata;\n");
    let database: String = tx.query_one("select quote_ident(current_database())", &[])?.get(0);
    sql.push_str(&format!(
        "alter database {database} reset all;
         create schema public authorization pg_database_owner;
         grant usage on schema public to public;
         comment on schema public is 'standard public schema';\n"
    ));
    Ok(sql)
}
