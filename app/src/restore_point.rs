//! The SQL of a restore point: the database a `db reset` or `seed --replace` replaced,
//! kept beside its target under `<target>_xtask_restore` (one per database), marked by its
//! comment (`xtask-restore-point`, when it was made, what replaced it, the comment the
//! database had) and closed to connections, so that nobody works in it by mistake.
//! `db undo` swaps it back in by renames in one transaction, and the state it replaces
//! becomes the restore point: undo twice is redo. Run on the guard's maintenance
//! connection ([`WriteTarget::<op::Undo>`](crate::guard::WriteTarget)); nothing here
//! opens a connection.

use anyhow::{Result, bail};
use postgres::{Client, GenericClient, error::SqlState};

use crate::{
    sql::{ident, literal},
    template::{Names, SCRATCH_MARK, comment_of, copy_state, exists, pause_pg_cron, run},
};

const RESTORE_MARK: &str = "xtask-restore-point";

/// What a restore point holds, as `db status` and `db undo` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePoint {
    /// When it was made (the server's clock, UTC).
    pub made: String,
    /// What replaced it (`db reset`, `seed --replace`, `db undo`).
    pub replaced_by: String,
}

impl RestorePoint {
    /// The restore point a database comment describes, if it is one of ours.
    pub fn from_comment(comment: &str) -> Option<RestorePoint> {
        let mut lines = comment.splitn(4, '\n');
        if lines.next()? != RESTORE_MARK {
            return None;
        }
        Some(RestorePoint { made: lines.next()?.to_string(), replaced_by: lines.next()?.to_string() })
    }
}

/// The comment the database had before it became a restore point.
fn original_comment(comment: &str) -> Option<String> {
    comment.splitn(4, '\n').nth(3).filter(|c| !c.is_empty()).map(str::to_string)
}

/// The quoted comment that marks a database as a restore point made now.
fn mark(client: &mut impl GenericClient, replaced_by: &str, original: Option<&str>) -> Result<String> {
    let made: String =
        client.query_one("select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS \"UTC\"')", &[])?.get(0);
    Ok(literal(&format!("{RESTORE_MARK}\n{made}\n{replaced_by}\n{}", original.unwrap_or(""))))
}

/// The target's restore point, if the database under its name is ours: marked, and owned
/// by the target's owner, so that a login that may only create databases cannot plant one.
pub(crate) fn find(client: &mut impl GenericClient, names: &Names) -> Result<Option<RestorePoint>> {
    let row = client.query_opt(
        "select shobj_description(r.oid, 'pg_database'), r.datdba = t.datdba
         from pg_database r, pg_database t where r.datname = $1 and t.datname = $2",
        &[&names.restore, &names.target],
    )?;
    Ok(row.and_then(|r| {
        let (comment, same_owner): (Option<String>, bool) = (r.get(0), r.get(1));
        comment.filter(|_| same_owner).and_then(|c| RestorePoint::from_comment(&c))
    }))
}

/// Why no restore point can be kept: a database not ours holds its name.
pub(crate) fn slot_taken(client: &mut Client, names: &Names) -> Result<Option<String>> {
    if exists(client, &names.restore)? && find(client, names)?.is_none() {
        return Ok(Some(format!(
            "a database named {} exists that this project did not make (drop or rename it to keep a restore point)",
            names.restore
        )));
    }
    Ok(None)
}

/// The statements, for the swap's transaction, that make the target the restore point
/// (the previous one renamed to scratch, for `drop_replaced`). The slot was checked free
/// or ours, and the scratch name cleared, before.
pub(crate) fn replace_with_target_sql(client: &mut Client, names: &Names, replaced_by: &str) -> Result<String> {
    let (target, old, restore) = (ident(&names.target), ident(&names.old), ident(&names.restore));
    let mut sql = String::new();
    if exists(client, &names.restore)? {
        sql.push_str(&format!(
            "alter database {restore} rename to {old}; comment on database {old} is {};\n",
            literal(SCRATCH_MARK)
        ));
    }
    let original = comment_of(client, &names.target)?;
    let mark = mark(client, replaced_by, original.as_deref())?;
    sql.push_str(&format!(
        "alter database {target} rename to {restore};
         comment on database {restore} is {mark};
         alter database {restore} with allow_connections false;\n"
    ));
    Ok(sql)
}

/// Copies the target as it is now to its restore point, before a command rewrites it in
/// place. The copy is built under the scratch name and renamed in one transaction.
/// `Some(why)` when someone else is connected to the target (a copy needs it alone):
/// nothing changed.
pub(crate) fn copy_target(client: &mut Client, names: &Names, replaced_by: &str) -> Result<Option<String>> {
    let fresh = ident(&names.fresh);
    pause_pg_cron(client, &names.target)?;
    match crate::template::create_copy(client, &names.fresh, &names.target) {
        Err(err) if err.code() == Some(&SqlState::OBJECT_IN_USE) => {
            return Ok(Some(format!("other sessions are connected to {}", names.target)));
        }
        Err(err) => bail!("cannot copy the database to its restore point: {}", crate::connect::error_chain(&err)),
        Ok(()) => {}
    }
    run(client, &format!("comment on database {fresh} is {}", literal(SCRATCH_MARK)), "cannot mark the copy")?;
    let mut tx = client.transaction()?;
    copy_state(&mut tx, &names.target, &names.fresh)?;
    let (old, restore) = (ident(&names.old), ident(&names.restore));
    let mut sql = String::new();
    if exists(&mut tx, &names.restore)? {
        sql.push_str(&format!(
            "alter database {restore} rename to {old}; comment on database {old} is {};\n",
            literal(SCRATCH_MARK)
        ));
    }
    let original = comment_of(&mut tx, &names.target)?;
    let mark = mark(&mut tx, replaced_by, original.as_deref())?;
    sql.push_str(&format!(
        "alter database {fresh} rename to {restore};
         comment on database {restore} is {mark};
         alter database {restore} with allow_connections false;"
    ));
    tx.batch_execute(&sql)
        .map_err(|err| anyhow::anyhow!("cannot keep the restore point: {}", crate::connect::error_chain(&err)))?;
    tx.commit()
        .map_err(|err| anyhow::anyhow!("cannot keep the restore point: {}", crate::connect::error_chain(&err)))
        .map(|()| None)
}

/// Opens or closes the restore point to connections (its stamp is read before an undo).
pub(crate) fn allow_connections(client: &mut Client, names: &Names, allow: bool) -> Result<()> {
    run(
        client,
        &format!("alter database {} with allow_connections {allow}", ident(&names.restore)),
        "cannot open the restore point to read its stamp",
    )
}

/// Swaps the restore point in, in one transaction; the target becomes the restore point.
/// Returns what the restored state was.
pub(crate) fn undo(client: &mut Client, names: &Names) -> Result<RestorePoint> {
    let Some(point) = find(client, names)? else { bail!("{}", no_restore_point(names)) };
    let restored_comment = comment_of(client, &names.restore)?.as_deref().and_then(original_comment);
    let target_comment = comment_of(client, &names.target)?;
    let (target, old, restore) = (ident(&names.target), ident(&names.old), ident(&names.restore));
    let restored_comment = restored_comment.map_or("null".to_string(), |c| literal(&c));
    pause_pg_cron(client, &names.target)?;
    let mut tx = client.transaction()?;
    let mark = mark(&mut tx, "db undo", target_comment.as_deref())?;
    let swapped = tx.batch_execute(&format!(
        "alter database {target} rename to {old};
         alter database {restore} rename to {target};
         alter database {target} with allow_connections true;
         comment on database {target} is {restored_comment};
         alter database {old} rename to {restore};
         comment on database {restore} is {mark};
         alter database {restore} with allow_connections false;"
    ));
    match swapped {
        Ok(()) => {}
        Err(err) if err.code() == Some(&SqlState::OBJECT_IN_USE) => bail!(
            "other sessions are connected to {}: nothing was undone\nhint: close them (the app, a psql) and run `cargo xtask db undo` again",
            names.target
        ),
        Err(err) => bail!("cannot swap the restore point in: {}", crate::connect::error_chain(&err)),
    }
    tx.commit().map_err(|err| {
        anyhow::anyhow!("cannot commit the undo: {}; nothing changed", crate::connect::error_chain(&err))
    })?;
    Ok(point)
}

/// The error of an undo without a restore point.
pub(crate) fn no_restore_point(names: &Names) -> String {
    format!(
        "{} has no restore point: there is nothing to undo\nhint: `db reset` and `seed --replace` keep one (unless --no-restore-point)",
        names.target
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_point_comment_says_when_and_what_and_keeps_the_original() {
        let comment = format!("{RESTORE_MARK}\n2026-12-07 14:00:00 UTC\ndb reset\nsupabase-bootstrap 3\nsecond line");
        let point = RestorePoint::from_comment(&comment).unwrap();
        assert_eq!(point.made, "2026-12-07 14:00:00 UTC");
        assert_eq!(point.replaced_by, "db reset");
        assert_eq!(original_comment(&comment).as_deref(), Some("supabase-bootstrap 3\nsecond line"));
        assert_eq!(original_comment(&format!("{RESTORE_MARK}\nt\nw\n")), None);
        assert!(RestorePoint::from_comment("xtask-scratch").is_none());
        assert!(RestorePoint::from_comment(&format!("{RESTORE_MARK}\nonly a time")).is_none());
    }
}
