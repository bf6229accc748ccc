//! Building a database's new state beside it, then swapping it in: `seed --replace` and
//! the rebuild of `db reset` on local and test (where the matrix allows an undo, so
//! creating databases). The build database is a copy of the target under the scratch name
//! `<target>_xtask_new`, marked `xtask-scratch` at once (or, if a kill falls before the
//! mark, recognised by its stamp: `mark_interrupted_clone`), so the next command drops it
//! whatever moment a kill hit. Nobody sees it before the swap, which renames the target
//! away (to the restore point, or to scratch) and the build to the target's name in one
//! transaction, as the template reset does: there is never a moment without a database
//! under the name, and a kill before the commit leaves the old database in place.
//! Every connection to the build database goes through a guard that shares the target's
//! pin: it must show the server identity this command checked first.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use postgres::{Client, error::SqlState};

use super::{Guard, Pin, op, server::differs};
use crate::{
    Resolved, connect, restore_point,
    sql::{ident, literal},
    template::{self, Names, SCRATCH_MARK, comment_of, pause_pg_cron, run},
};

/// A database being built beside its target, not yet swapped in.
pub struct Beside {
    names: Names,
    maintenance: Client,
    guard: Guard,
    /// The comment the swapped-in database gets, when not the target's own (a rebuild's
    /// bootstrap gives one).
    comment: Option<Option<String>>,
}

impl Guard {
    /// Copies the target, as it is now, to the build database beside it (after the
    /// target's stamp check and the maintenance connection's identity check). Refused by
    /// the matrix where no undo is allowed (staging, production); `Ok(Err(why))` when a
    /// build cannot be made safely here (someone else connected to the target, a database
    /// not ours under a scratch name, no maintenance connection): nothing changed, and the
    /// command may work in place instead.
    pub fn build_beside(&self) -> Result<Result<Beside, String>> {
        let target = self.write::<op::Undo>()?;
        let (names, mut maintenance) = match target.prepare_template()? {
            Ok(prepared) => prepared,
            Err(why) => return Ok(Err(why)),
        };
        // A killed build's sessions may still run a statement: they are ended (the build is
        // ours by its mark), as the drop below needs them gone.
        if comment_of(&mut maintenance, &names.fresh)?.as_deref() == Some(SCRATCH_MARK) {
            maintenance.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                &[&names.fresh],
            )?;
        }
        template::other_sessions(&mut maintenance, &names.fresh)?;
        target.mark_interrupted_clone(&mut maintenance, &names)?;
        if let Some(why) = target.clear_scratch(&mut maintenance, &names)? {
            return Ok(Err(why));
        }
        let others = template::other_sessions(&mut maintenance, &names.target)?;
        if others > 0 {
            return Ok(Err(format!("{others} other session(s) are connected to {}", names.target)));
        }
        let fresh = ident(&names.fresh);
        pause_pg_cron(&mut maintenance, &names.target)?;
        match template::create_copy(&mut maintenance, &names.fresh, &names.target) {
            Err(err) if err.code() == Some(&SqlState::OBJECT_IN_USE) => {
                return Ok(Err(format!("other sessions are connected to {}", names.target)));
            }
            Err(err) => bail!("cannot make the build database: {}", crate::connect::error_chain(&err)),
            Ok(()) => {}
        }
        run(
            &mut maintenance,
            &format!("comment on database {fresh} is {}", literal(SCRATCH_MARK)),
            "cannot mark the build",
        )?;
        let mut tx = maintenance.transaction()?;
        template::copy_state(&mut tx, &names.target, &names.fresh)?;
        tx.commit()?;
        let guard = self.for_database(&names.fresh)?;
        Ok(Ok(Beside { names, maintenance, guard, comment: None }))
    }

    /// This guard, for another database of the pinned server: pinned to it anew, after its
    /// first connection showed the pinned server's system identifier and start time; every
    /// later connection must show that identity, and writes check that database's stamp.
    fn for_database(&self, dbname: &str) -> Result<Guard> {
        let pinned = self.pin.get().context("no pinned server: the target was not checked before the build")?;
        let url = self.resolved.database()?.with_dbname(dbname);
        let opened = connect::open_at(&url, &pinned.endpoint, url.startup_timeout())?;
        let (checked, other) = (&pinned.identity, &opened.identity);
        if checked.system.is_none() || checked.system != other.system || checked.started != other.started {
            bail!(
                "the server at {} answering for database {dbname} is not the one this command checked (it reports another {}): refused",
                pinned.endpoint,
                differs(checked, other)
            );
        }
        let pin = OnceLock::new();
        let _ = pin.set(Pin { endpoint: pinned.endpoint.clone(), identity: opened.identity, shared: pinned.shared });
        let from = &self.resolved;
        let resolved = Resolved {
            environment: from.environment,
            rule: from.rule.clone(),
            files: from.files.clone(),
            warnings: Vec::new(),
            vars: from.vars.clone(),
            database: Some(url),
            project_ref: from.project_ref.clone(),
        };
        Ok(Guard {
            resolved,
            settings: self.settings.clone(),
            confirmed: false,
            throwaway: self.throwaway,
            pin: Arc::new(pin),
        })
    }
}

impl Beside {
    /// The guard of the build database: what builds the new state connects through it.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Empties the build database and rebuilds it from `bootstrap`, as `db reset` does in
    /// place (one transaction), keeping it marked as scratch until the swap, which gives
    /// it the comment the bootstrap set.
    pub fn reset_in_place(&mut self, bootstrap: &str) -> Result<()> {
        let (_, given) = self.guard.write::<op::Reset>()?.reset_in_place_marked(bootstrap, Some(SCRATCH_MARK))?;
        self.comment = Some(given);
        Ok(())
    }

    /// The build database's name.
    pub fn name(&self) -> &str {
        &self.names.fresh
    }

    /// Swaps the build in, in one transaction. With `keep` (what replaced it), the target
    /// becomes the restore point (`db undo`); without, it is renamed to scratch, for
    /// `db reset --drop-replaced`. Every connection of this command to the build database
    /// and the target must be closed. `Some(why)` when someone else is connected: nothing
    /// was swapped, and the build is dropped.
    pub fn swap(mut self, keep: Option<&str>) -> Result<Option<String>> {
        for database in [self.names.fresh.clone(), self.names.target.clone()] {
            let others = template::other_sessions(&mut self.maintenance, &database)?;
            if others > 0 {
                self.abandon()?;
                return Ok(Some(format!("{others} other session(s) are connected to {database}")));
            }
        }
        match self.swap_sql(keep)? {
            Ok(()) => Ok(None),
            Err(why) => {
                self.abandon()?;
                Ok(Some(why))
            }
        }
    }

    /// Why the target cannot become the restore point: a database not ours (by its comment,
    /// owner or stamp) holds its name.
    pub fn restore_point_refused(&mut self) -> Result<Option<String>> {
        self.guard.write::<op::Undo>()?.restore_slot_refused(&mut self.maintenance, &self.names)
    }

    fn swap_sql(&mut self, keep: Option<&str>) -> Result<Result<(), String>> {
        let (names, client) = (&self.names, &mut self.maintenance);
        let original = match &self.comment {
            Some(given) => given.clone(),
            None => comment_of(client, &names.target)?,
        };
        let away = match keep {
            Some(what) => Some(restore_point::replace_with_target_sql(client, names, what)?),
            None => None,
        };
        if !template::rename_in(client, names, away, original)? {
            return Ok(Err(format!("other sessions are connected to {}", names.target)));
        }
        Ok(Ok(()))
    }

    /// Drops the build database (a failed build): the target stays as it was. Every
    /// connection of this command to the build must be closed.
    pub fn abandon(mut self) -> Result<()> {
        template::other_sessions(&mut self.maintenance, &self.names.fresh)?;
        run(
            &mut self.maintenance,
            &format!("drop database if exists {}", ident(&self.names.fresh)),
            "cannot drop the build database",
        )
    }
}
