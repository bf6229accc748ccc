//! The SQL of `db reset` from a template database, run on a maintenance connection (to
//! another database of the same server) that the guard opened and proved to be the pinned
//! server: [`WriteTarget::<op::Reset>::reset_from_template`](crate::guard::WriteTarget).
//!
//! A template is a database named after its target (`<target>_xtask_template`), that
//! nobody may connect to, whose comment carries the key it was made with (checksums of
//! what built it) and the target's own comment. A clone is built under a scratch name and
//! swapped in by two renames in one transaction: there is never a moment without a
//! database under the target's name, and the swap fails, changing nothing, while anyone
//! is connected to the target. Nothing here opens a connection.

use anyhow::{Context, Result, bail};
use postgres::{Client, GenericClient, error::SqlState};

use crate::sql::{ident, literal};

/// Comment prefix of a template this project made; the key follows, then a newline and
/// the comment its target had.
const TEMPLATE_MARK: &str = "xtask-template ";
/// Comment of a scratch database (a clone not yet swapped in, or the old target after the
/// swap): ours to drop.
pub(crate) const SCRATCH_MARK: &str = "xtask-scratch";
/// Settings stored as lists of quoted identifiers (`GUC_LIST_QUOTE`): copied as written.
const LIST_SETTINGS: &[&str] =
    &["search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"];

/// The databases a template reset touches, by name.
#[derive(Debug)]
pub(crate) struct Names {
    pub target: String,
    pub template: String,
    pub fresh: String,
    pub old: String,
    pub restore: String,
}

impl Names {
    /// `None` when the derived names would exceed PostgreSQL's 63 bytes.
    pub(crate) fn for_target(target: &str) -> Option<Names> {
        let name = |suffix: &str| Some(format!("{target}_xtask_{suffix}")).filter(|n| n.len() <= 63);
        Some(Names {
            target: target.to_string(),
            template: name("template")?,
            fresh: name("new")?,
            old: name("old")?,
            restore: name("restore")?,
        })
    }
}

/// The key the target's template was made with, if there is one of ours: marked by its
/// comment, and owned by the target's owner (as [`refresh`] makes it), so that a login
/// that may only create databases cannot plant one.
pub(crate) fn template_key(client: &mut Client, names: &Names) -> Result<Option<String>> {
    let same_owner: Option<bool> = client
        .query_opt(
            "select t.datdba = d.datdba from pg_database t, pg_database d where t.datname = $1 and d.datname = $2",
            &[&names.template, &names.target],
        )?
        .map(|row| row.get(0));
    if same_owner != Some(true) {
        return Ok(None);
    }
    Ok(comment_of(client, &names.template)?
        .and_then(|c| c.strip_prefix(TEMPLATE_MARK).map(|rest| rest.lines().next().unwrap_or("").to_string())))
}

/// Sessions other than this command's on `database` (but pg_cron's launcher, see
/// [`pause_pg_cron`]): a swap would wait for them, then fail.
/// Sessions that just closed end asynchronously: this command's own check of the stamp, a
/// moment ago, or those of a command killed mid-statement, whose server process finishes
/// the statement before it sees its client gone. They get three seconds to go, so a reset
/// after a killed one still clones (and swaps atomically) instead of rebuilding in place.
pub(crate) fn other_sessions(client: &mut Client, database: &str) -> Result<i64> {
    let mut count = 0;
    for _ in 0..300 {
        count = client
            .query_one(
                "select count(*) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()
                   and backend_type is distinct from 'pg_cron launcher'",
                &[&database],
            )
            .context("cannot list the sessions on the target database")?
            .get(0);
        if count == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(count)
}

/// pg_cron's launcher stays connected to its database (`cron.database_name`, `postgres`
/// as on Supabase), which blocks cloning or renaming it. It is a background worker that the
/// server restarts a second after it ends, reconnecting by name (to the swapped-in clone):
/// ending it just before the clone or the swap is what lets them run at all.
/// It is waited for here, in small steps: the server itself checks every 100 ms.
pub(crate) fn pause_pg_cron(client: &mut Client, database: &str) -> Result<()> {
    let launcher = "select pid from pg_stat_activity where datname = $1 and backend_type = 'pg_cron launcher'";
    let pids: Vec<i32> = client.query(launcher, &[&database])?.iter().map(|r| r.get(0)).collect();
    if pids.is_empty() {
        return Ok(());
    }
    client
        .query("select pg_terminate_backend(pid) from unnest($1::int[]) pid", &[&pids])
        .context("cannot pause pg_cron's launcher")?;
    for _ in 0..100 {
        let left: i64 = client.query_one("select count(*) from pg_stat_activity where pid = any($1)", &[&pids])?.get(0);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

/// First key of the advisory lock ([`lock`]); the second is the target's name hashed.
const LOCK_CLASS: i32 = 0x7874_6173;

/// Takes, for this maintenance session, the lock that one command at a time holds while it
/// works on a target and the databases beside it (a build, a clone, a restore point, an
/// undo): a second command would otherwise take a running build for a killed one's, end
/// its sessions and drop it, or swap in its own half-made build. A session lock: it goes
/// with the connection, a killed command's too. Another command's is waited for a minute
/// (a seed or a rebuild beside, a detached drop of a replaced database).
pub(crate) fn lock(client: &mut Client, names: &Names) -> Result<()> {
    let key = "select pg_try_advisory_lock($1, hashtext($2))";
    for _ in 0..3000 {
        if client.query_one(key, &[&LOCK_CLASS, &names.target]).context("cannot take the lock on the target")?.get(0) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let holder: Option<i32> = client
        .query_opt(
            "select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 2
               and classid = $1::int::oid and objid = hashtext($2)::oid and database = (select oid from pg_database where datname = current_database())",
            &[&LOCK_CLASS, &names.target],
        )?
        .map(|row| row.get(0));
    bail!(
        "another command is working on {} and the databases beside it (server process {}): refused, nothing changed\nhint: wait until it ends (a seed, a reset, an undo), then run this again",
        names.target,
        holder.map_or("unknown".to_string(), |pid| pid.to_string())
    )
}

/// Drops scratch databases a killed reset left behind; a database under a scratch name
/// that is not ours is a reason not to clone (returned).
pub(crate) fn clear_scratch(client: &mut Client, names: &Names) -> Result<Option<String>> {
    for name in [&names.fresh, &names.old] {
        if !exists(client, name)? {
            continue;
        }
        if comment_of(client, name)?.as_deref() != Some(SCRATCH_MARK) {
            return Ok(Some(format!(
                "a database named {name} exists that this project did not make (drop it, or rename it, to reset from a template)"
            )));
        }
        // `if exists`: a detached `drop_replaced` may be dropping it right now.
        run(client, &format!("drop database if exists {}", ident(name)), "cannot drop a scratch database")?;
    }
    Ok(None)
}

/// Clones the template under the scratch name, with the template's database-level state.
pub(crate) fn clone_template(client: &mut Client, names: &Names) -> Result<()> {
    create_copy(client, &names.fresh, &names.template)
        .map_err(|err| anyhow::anyhow!("cannot clone the template: {}", crate::connect::error_chain(&err)))?;
    let fresh = ident(&names.fresh);
    run(client, &format!("comment on database {fresh} is {}", literal(SCRATCH_MARK)), "cannot mark the clone")?;
    let mut tx = client.transaction()?;
    copy_state(&mut tx, &names.template, &names.fresh)?;
    tx.commit().context("cannot give the clone the template's settings")
}

/// Drops a clone that will not be swapped in.
pub(crate) fn drop_clone(client: &mut Client, names: &Names) -> Result<()> {
    run(client, &format!("drop database {}", ident(&names.fresh)), "cannot drop the clone")
}

/// Swaps the clone in: one transaction renames the target away and the clone to the
/// target's name. `away` is how the target goes: the statements that make it the restore
/// point (the previous restore point, like the old database otherwise, is marked as
/// scratch, for [`drop_replaced`]), or, when `None`, a rename to the scratch name.
/// `Some(why)` when someone is connected to the target: nothing was swapped and the clone
/// is dropped.
pub(crate) fn swap(client: &mut Client, names: &Names, away: Option<String>) -> Result<Option<String>> {
    let original = comment_of(client, &names.template)?
        .and_then(|c| c.split_once('\n').map(|(_, rest)| rest.to_string()))
        .filter(|c| !c.is_empty());
    if !rename_in(client, names, away, original)? {
        drop_clone(client, names)?;
        return Ok(Some(format!("other sessions are connected to {}", names.target)));
    }
    Ok(None)
}

/// The swap's one transaction: `away` moves the target aside (by default: renamed to `old`
/// and marked scratch), then `fresh` takes the target's name and `comment`. `false`: other
/// sessions are connected to the target, and nothing changed.
pub(crate) fn rename_in(
    client: &mut Client,
    names: &Names,
    away: Option<String>,
    comment: Option<String>,
) -> Result<bool> {
    let (target, fresh, old) = (ident(&names.target), ident(&names.fresh), ident(&names.old));
    let comment = comment.map_or("null".to_string(), |c| literal(&c));
    let scratch = literal(SCRATCH_MARK);
    let away = away
        .unwrap_or_else(|| format!("alter database {target} rename to {old}; comment on database {old} is {scratch};"));
    pause_pg_cron(client, &names.target)?;
    let mut tx = client.transaction()?;
    let swapped = tx.batch_execute(&format!(
        "{away}
         alter database {fresh} rename to {target};
         comment on database {target} is {comment};"
    ));
    match swapped {
        Ok(()) => tx.commit().context("cannot commit the swap; the target database is as it was")?,
        Err(err) if err.code() == Some(&SqlState::OBJECT_IN_USE) => return Ok(false),
        Err(err) => bail!("cannot swap {} in: {}", names.fresh, crate::connect::error_chain(&err)),
    }
    Ok(true)
}

/// Drops the database a swap replaced, if it is there and ours. `DROP DATABASE` forces a
/// checkpoint (seconds on a busy disk), so `db reset` leaves this to a detached process.
pub(crate) fn drop_replaced(client: &mut Client, names: &Names) -> Result<()> {
    if comment_of(client, &names.old)?.as_deref() == Some(SCRATCH_MARK) {
        run(client, &format!("drop database if exists {}", ident(&names.old)), "cannot drop the replaced database")?;
    }
    Ok(())
}

/// Makes the template anew from the target, which must have no other sessions.
pub(crate) fn refresh(client: &mut Client, names: &Names, key: &str) -> Result<()> {
    let template = ident(&names.template);
    if exists(client, &names.template)? {
        if !comment_of(client, &names.template)?.is_some_and(|c| c.starts_with(TEMPLATE_MARK)) {
            bail!(
                "a database named {} exists that this project did not make: the template is not refreshed\nhint: drop or rename it",
                names.template
            );
        }
        run(client, &format!("drop database {template}"), "cannot drop the old template")?;
    }
    let original = comment_of(client, &names.target)?.unwrap_or_default();
    pause_pg_cron(client, &names.target)?;
    create_copy(client, &names.template, &names.target).map_err(|err| {
        anyhow::anyhow!("cannot make the template from the reset database: {}", crate::connect::error_chain(&err))
    })?;
    let mut tx = client.transaction()?;
    copy_state(&mut tx, &names.target, &names.template)?;
    tx.batch_execute(&format!(
        "comment on database {template} is {};
         alter database {template} with allow_connections false;",
        literal(&format!("{TEMPLATE_MARK}{key}\n{original}"))
    ))?;
    tx.commit().context("cannot mark the template")
}

/// What `CREATE DATABASE ... TEMPLATE` does not copy: the owner, grants on the database,
/// and settings made with `ALTER DATABASE ... SET` (Supabase's `search_path`).
pub(crate) fn copy_state(tx: &mut postgres::Transaction<'_>, from: &str, to: &str) -> Result<()> {
    let to_ident = ident(to);
    let mut sql = String::new();
    let owner: String = tx
        .query_one("select quote_ident(pg_get_userbyid(datdba)) from pg_database where datname = $1", &[&from])?
        .get(0);
    sql.push_str(&format!("alter database {to_ident} owner to {owner};\n"));
    let acl = tx.query(
        "select a.privilege_type, coalesce(quote_ident(r.rolname), 'public')
         from pg_database d cross join lateral aclexplode(d.datacl) a left join pg_roles r on r.oid = a.grantee
         where d.datname = $1",
        &[&from],
    )?;
    if !acl.is_empty() {
        sql.push_str(&format!("revoke all on database {to_ident} from public;\n"));
    }
    for row in acl {
        sql.push_str(&format!(
            "grant {} on database {to_ident} to {};\n",
            row.get::<_, String>(0),
            row.get::<_, String>(1)
        ));
    }
    let settings = tx.query(
        "select quote_ident(r.rolname), unnest(s.setconfig) from pg_db_role_setting s
         join pg_database d on d.oid = s.setdatabase left join pg_roles r on r.oid = s.setrole
         where d.datname = $1",
        &[&from],
    )?;
    for row in settings {
        let (role, setting): (Option<String>, String) = (row.get(0), row.get(1));
        let Some((name, value)) = setting.split_once('=') else { continue };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            bail!("the database {from} has a setting with an unexpected name: {name:?}");
        }
        let value = if LIST_SETTINGS.contains(&name) { value.to_string() } else { literal(value) };
        match role {
            Some(role) => sql.push_str(&format!("alter role {role} in database {to_ident} set {name} = {value};\n")),
            None => sql.push_str(&format!("alter database {to_ident} set {name} = {value};\n")),
        }
    }
    tx.batch_execute(&sql)
        .map_err(|err| anyhow::anyhow!("cannot copy {from}'s settings to {to}: {}", crate::connect::error_chain(&err)))
}

/// `create database <copy> template <from>`: the server's `FILE_COPY` strategy (15 and
/// later) where it is cheaper than its default `WAL_LOG`, which writes every block of the
/// copy to the WAL. `FILE_COPY` copies the files at once but checkpoints twice: measured on
/// a 325 MB database, 0.22 s against 0.60 s with `fsync = off` and 1.0 s against 1.5 s with
/// it on; on an 11 MB one with `fsync` on, 1.3 s against 0.17 s. So: `FILE_COPY` when
/// `fsync` is off or the source holds at least [`FILE_COPY_FROM`] bytes.
/// The server's own error is returned as it is (callers tell "in use" apart).
pub(crate) fn create_copy(client: &mut Client, copy: &str, from: &str) -> Result<(), postgres::Error> {
    let file_copy: bool = client
        .query_one(
            "select current_setting('server_version_num')::int >= 150000
                    and (current_setting('fsync') = 'off'
                         or coalesce((select case when has_database_privilege(oid, 'CONNECT') then pg_database_size(oid) end
                                      from pg_database where datname = $1), 0) >= $2)",
            &[&from, &FILE_COPY_FROM],
        )?
        .get(0);
    let strategy = if file_copy { " strategy file_copy" } else { "" };
    client.batch_execute(&format!("create database {} template {}{strategy}", ident(copy), ident(from)))
}

/// From what size a copy is made by `FILE_COPY` where `fsync` is on (see [`create_copy`]).
const FILE_COPY_FROM: i64 = 192 << 20;

pub(crate) fn exists(client: &mut impl GenericClient, name: &str) -> Result<bool> {
    Ok(client.query_one("select exists (select from pg_database where datname = $1)", &[&name])?.get(0))
}

pub(crate) fn comment_of(client: &mut impl GenericClient, name: &str) -> Result<Option<String>> {
    let rows =
        client.query("select shobj_description(oid, 'pg_database') from pg_database where datname = $1", &[&name])?;
    Ok(rows.first().and_then(|r| r.get(0)))
}

pub(crate) fn run(client: &mut Client, sql: &str, what: &str) -> Result<()> {
    client.batch_execute(sql).map_err(|err| anyhow::anyhow!("{what}: {}", crate::connect::error_chain(&err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_limit_or_are_refused() {
        let names = Names::for_target("postgres").unwrap();
        assert_eq!(names.template, "postgres_xtask_template");
        assert!(Names::for_target(&"d".repeat(50)).is_none());
    }
}
