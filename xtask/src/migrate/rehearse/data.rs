//! The rehearsal's data: a copy of the environment's database, read through the read-only
//! path (a read-only session, and `pg_dump` with read-only transactions), or a seeded
//! profile on the schema of the migrations before the rehearsed ones.

use std::{
    io::{Read, Write},
    path::Path,
};

use anyhow::{Context, Result, bail};
use app::{
    Environment, Guard,
    guard::{ReadConnection, ReadTarget, op},
};
use postgres::Client;
use xshell::Shell;

use crate::{
    context::{self, status},
    flags::{Global, Profile, RehearseData},
    migrate::{self, Migration},
    pg, seed,
    throwaway::{self, Throwaway, restore::Restore},
};

/// Copies the environment's application schemas and data into the throwaway cluster (which
/// already has Supabase's roles and `auth` schema) and returns the migrations pending there
/// and the guards of the copy: the restorer's, which the migrations run as (the copy's
/// code is its author's, never the superuser's), and the superuser's with a pinned search
/// path, for catalog reads and row counts.
pub(super) fn copy(
    sh: &Shell,
    global: &Global,
    throwaway: &Throwaway,
    files: &[Migration],
    pending_on: Option<Environment>,
) -> Result<(String, Vec<Migration>, Guard, Guard)> {
    let guard = context::guard(global)?;
    let env = guard.environment();
    if !guard.allows::<op::MigrationTesting>() {
        bail!(
            "rehearsing on a copy of {env} is refused: the access matrix allows no migration testing there\nhint: rehearse on staging, which holds an anonymized copy of production (--env staging), or on seeded data (--data large)"
        );
    }
    let source = guard.read::<op::Inspect>()?;
    let mut src = source.connect()?;
    refuse_other_database(src.stamp, env, &source)?;
    let choice = choose(&mut src, files, env, pending_on)?;
    let started = std::time::Instant::now();
    let (owner, reader) = restore_copy(sh, (&source, &mut src), throwaway, env)?;
    revert_ahead(&owner, &choice, env)?;
    status(format!("copied {env} into a throwaway cluster in {:.1} s (read-only)", started.elapsed().as_secs_f64()));
    let other = choice.other;
    if !choice.ahead.is_empty() {
        status(format!("reverted the copy to {other}'s migrations: {} down(s)", choice.ahead.len()));
    }
    let source =
        if other == env { format!("a copy of {env}") } else { format!("a copy of {env} at {other}'s migrations") };
    Ok((source, choice.pending, owner, reader))
}

/// The copy is of the environment's own database only, as stage-sync reads its source: a
/// URL (a tunnel, a typo) reaching a database stamped otherwise, production above all, or
/// one this project never stamped, is refused before a row is read.
fn refuse_other_database(stamp: Option<Environment>, env: Environment, source: &ReadTarget<op::Inspect>) -> Result<()> {
    match stamp {
        Some(stamp) if stamp == env => Ok(()),
        Some(stamp) => bail!(
            "the database at {} is stamped {stamp}, not {env}: rehearsing on a copy of it is refused, nothing was read\nhint: the {env} URL reaches the {stamp} database; check env/.env.{env}",
            source.url().address()
        ),
        None => bail!(
            "the database at {} has no environment stamp: it is not this project's, so it is not copied\nhint: point DATABASE_URL at the {env} database this project created, or rehearse on seeded data (--data large)",
            source.url().address()
        ),
    }
}

/// Which migrations a copy rehearses.
struct Choice {
    /// The environment whose ledger says what is pending (the copied one unless
    /// `--pending-on` names another).
    other: Environment,
    pending: Vec<Migration>,
    /// Applied on the copied environment but pending on `other`: reverted on the copy.
    ahead: Vec<Migration>,
}

/// The migrations pending on `pending_on` (production, for the production workflow), whose
/// ledger is only read; refused when the copied environment is behind it.
fn choose(
    src: &mut ReadConnection<op::Inspect>,
    files: &[Migration],
    env: Environment,
    pending_on: Option<Environment>,
) -> Result<Choice> {
    let ledger = migrate::read_ledger(&mut src.transaction()?)?;
    let (other, wanted) = match pending_on.filter(|e| *e != env) {
        Some(other) => {
            let guard = context::guard_for(Some(other))?;
            let mut conn = guard.read::<op::Inspect>()?.connect()?;
            (other, migrate::read_ledger(&mut conn.transaction()?)?)
        }
        None => (env, migrate::read_ledger(&mut src.transaction()?)?),
    };
    let pending: Vec<Migration> = migrate::plan(files, &wanted, None)?.into_iter().cloned().collect();
    let applied =
        |m: &Migration| ledger.iter().any(|e| e.version == m.version && e.outcome == crate::migrate::Outcome::Applied);
    if let Some(m) = files.iter().find(|m| wanted.iter().any(|e| e.version == m.version) && !applied(m)) {
        bail!(
            "{env} is behind {other}: {} is applied there, not on {env}\nhint: `cargo xtask migrate up --env {env}` first",
            m.label()
        );
    }
    let ahead = pending.iter().filter(|m| applied(m)).cloned().collect();
    Ok(Choice { other, pending, ahead })
}

/// Copies `auth.users`, dumps the source read-only and restores the dump into the
/// throwaway as data; returns the guards of the copy (the restorer's, the superuser's).
fn restore_copy(
    sh: &Shell,
    (source, src): (&ReadTarget<op::Inspect>, &mut ReadConnection<op::Inspect>),
    throwaway: &Throwaway,
    env: Environment,
) -> Result<(Guard, Guard)> {
    let target = throwaway.guard()?;
    let copy_target = target.write::<op::Migrate>()?;
    let mut dst = copy_target.connect()?;
    copy_auth_users(&mut src.transaction()?, dst.client())?;
    drop(dst);
    let dump = throwaway.cluster.dir.join("copy.dump");
    dump_source(sh, source, &dump, env)?;
    // Restored as data: by a login that is no superuser and owns no database, as a dump of
    // production is (`throwaway::restore`); anything that does not restore whole is an error.
    let listed = pg::client_cmd(sh, "pg_restore", &copy_target.client_args()?)?
        .arg("--list")
        .arg(&dump)
        .ignore_status()
        .output()?;
    if !listed.status.success() {
        bail!("cannot read the copy of {env}: {}", last_line(&listed.stderr));
    }
    let restore = Restore { throwaway, database: "postgres", create: false, tolerant: false };
    let skipped = restore.run(sh, &dump, &String::from_utf8_lossy(&listed.stdout), &format!("the copy of {env}"))?;
    for line in skipped.lines() {
        context::warn(format!("left out of the copy of {env}: {line}"));
    }
    let _ = std::fs::remove_file(&dump);
    let owner = throwaway::throwaway_guard(&restore.owner_url())?;
    let reader = throwaway::throwaway_guard(&restore.superuser_url())?;
    Ok((owner, reader))
}

/// `pg_dump` of the application's schemas (Supabase's left out) in read-only transactions.
fn dump_source(sh: &Shell, source: &ReadTarget<op::Inspect>, dump: &Path, env: Environment) -> Result<()> {
    let mut excluded: Vec<String> =
        app::stamp::SUPABASE_SCHEMAS.iter().map(|s| format!("--exclude-schema={s}")).collect();
    excluded.push("--exclude-schema=pg_temp*".to_string());
    let dump_arg = format!("--file={}", dump.display());
    let out = pg::client_cmd(sh, "pg_dump", &source.client_args()?)?
        .args([
            "--format=custom",
            "--compress=0",
            "--no-owner",
            "--no-privileges",
            "--no-publications",
            "--no-subscriptions",
        ])
        .args(&excluded)
        .arg(&dump_arg)
        .env("PGOPTIONS", "-c default_transaction_read_only=on")
        .ignore_status()
        .output()?;
    if !out.status.success() {
        bail!("cannot copy {env} with pg_dump: {}", last_line(&out.stderr));
    }
    Ok(())
}

/// Reverts the copy, newest first, to the migrations of the environment it is rehearsed
/// for; then analyzes it.
fn revert_ahead(owner: &Guard, choice: &Choice, env: Environment) -> Result<()> {
    let other = choice.other;
    let mut dst = owner.write::<op::Migrate>()?.connect()?;
    for m in choice.ahead.iter().rev() {
        let Some(down) = &m.down else {
            bail!("cannot revert {} on the copy of {env} to {other}'s migrations: it has no down file", m.label());
        };
        dst.client().batch_execute(&down.sql).map_err(|err| {
            anyhow::anyhow!(
                "cannot revert {} on the copy of {env} to {other}'s migrations: {}",
                m.label(),
                super::run::db_message(&err)
            )
        })?;
    }
    dst.client().batch_execute("analyze")?;
    Ok(())
}

/// `auth.users` rows first, so that the copy's foreign keys to them hold; only the columns
/// both sides have (a real Supabase project has more than the local bootstrap).
fn copy_auth_users(src: &mut postgres::Transaction<'_>, dst: &mut Client) -> Result<()> {
    let exists: bool = src.query_one("select to_regclass('auth.users') is not null", &[])?.get(0);
    if !exists {
        return Ok(());
    }
    let columns = "select column_name::text from information_schema.columns
                   where table_schema = 'auth' and table_name = 'users' and is_generated = 'NEVER' order by ordinal_position";
    let theirs: Vec<String> = src.query(columns, &[])?.iter().map(|r| r.get(0)).collect();
    let shared: Vec<String> =
        dst.query(columns, &[])?.iter().map(|r| r.get::<_, String>(0)).filter(|c| theirs.contains(c)).collect();
    let list = crate::sql::idents(&shared);
    let mut reader = src.copy_out(&format!("copy (select {list} from auth.users) to stdout"))?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    let mut writer = dst.copy_in(&format!("copy auth.users ({list}) from stdin"))?;
    writer.write_all(&bytes)?;
    writer.finish().context("cannot copy auth.users into the rehearsal copy")?;
    Ok(())
}

fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string()
}

/// Applies the migrations before `from` (default: the newest, alone), seeds the profile, and
/// returns the migrations from `from` on.
pub(super) fn seeded(
    guard: &Guard,
    files: &[Migration],
    data: RehearseData,
    from: Option<u64>,
) -> Result<(String, Vec<Migration>)> {
    let profile = match data {
        RehearseData::Minimal => Profile::Minimal,
        RehearseData::Realistic => Profile::Realistic,
        RehearseData::Large | RehearseData::Copy => Profile::Large,
    };
    let Some(from) = from.or(files.last().map(|m| m.version)) else { bail!("there are no migrations to rehearse") };
    if !files.iter().any(|m| m.version == from) {
        bail!("there is no migration {from:04}\nhint: `cargo xtask migrate status` lists them");
    }
    {
        let target = guard.write::<op::Migrate>()?;
        let mut conn = target.connect()?;
        let base: Vec<&Migration> =
            migrate::lock_and_plan(&mut conn, files, None)?.into_iter().filter(|m| m.version < from).collect();
        let backup = target.backed_up(|| crate::backup::take(&Shell::new()?, guard))?;
        for m in base {
            migrate::apply_up(conn.client(), m, Environment::Test, &backup, None)?;
        }
    }
    let options = seed::Options::new(profile, None, None, 1)?;
    // The seed's own hint (migrate the database first) does not apply here: --from does.
    seed::seed(guard, &options, false).map_err(|err| {
        let cause = format!("{err:#}");
        anyhow::anyhow!(
            "cannot seed the schema of the migrations before {from:04}: {}\nhint: choose a later --from: the seed fills tables the earlier migrations create",
            cause.lines().next().unwrap_or_default()
        )
    })?;
    let name = format!("{profile:?}").to_lowercase();
    Ok((format!("the {name} seed"), files.iter().filter(|m| m.version >= from).cloned().collect()))
}
