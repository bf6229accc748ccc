//! `cargo xtask migrate`: schema migrations with a ledger in `app_meta`, each file in its own
//! transaction together with its ledger row, a session advisory lock against concurrent
//! runs, typed confirmation and a verified backup on production, and `verify`/`diff` to test
//! migrations and compare environments. The files are this repository's up/down pairs or a
//! Supabase project's `supabase/migrations` (`migrate/layout.rs`).

mod baseline;
mod files;
mod first_migration;
mod grants;
pub(crate) mod layout;
mod ledger;
pub(crate) mod lint;
mod new;
mod platform;
mod prisma;
mod rehearse;
pub(crate) mod schema;
pub(crate) mod snapshot;
mod verify;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use app::{
    Environment, Guard,
    guard::{BackupTaken, PendingStamp, WriteConnection, op},
    secrets,
};
use postgres::{Client, GenericClient};
use xshell::Shell;

use crate::{
    app_meta,
    backup::{self, BackupFile},
    context::{self, data, status},
    flags::{self, Global, MigrateCommand},
};
pub(crate) use files::{Migration, checksum as checksum_text, extension_sources};
pub(crate) use ledger::Outcome;
use ledger::{Entry, read_ledger, resolve, show_status};
pub(crate) use verify::verify;

impl flags::Migrate {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let sh = Shell::new()?;
        match self.command {
            MigrateCommand::Status => show_status(global),
            MigrateCommand::Up(args) => up(&sh, global, args),
            MigrateCommand::Down { to } => down(global, to),
            MigrateCommand::New { name } => new::new(&name),
            MigrateCommand::Resolve { version, applied, .. } => resolve(global, version, applied),
            MigrateCommand::Verify => verify(&sh),
            MigrateCommand::Diff { from, to } => diff_command(&sh, from, to),
            MigrateCommand::Baseline(args) => baseline::run(&sh, global, args),
            MigrateCommand::Lint(args) => args.run(),
            MigrateCommand::Rehearse(args) => args.run(global),
        }
    }
}

/// Stops, naming each missing extension and its package, before anything changes when the
/// connected server cannot install an extension the migrations create.
pub(crate) fn check_extensions(client: &mut impl GenericClient, files: &[Migration]) -> Result<()> {
    crate::supabase::extensions::check_on_server(client, &files::extension_sources(files))
}

/// Applies every pending migration (for `db up` and `db reset`); returns how many.
pub(crate) fn up_all(guard: &Guard) -> Result<usize> {
    let files = load_files()?;
    let target = guard.write::<op::Migrate>()?;
    let mut conn = target.connect()?;
    let stamp = conn.pending_stamp();
    check_extensions(conn.client(), &files)?;
    let pending = lock_and_plan(&mut conn, &files, None)?;
    if matches!(guard.environment(), Environment::Staging | Environment::Production) {
        lint::refuse_unacknowledged(&pending)?;
    }
    let backup = target.backed_up(|| backup::take(&Shell::new()?, guard))?;
    for migration in &pending {
        apply_up(conn.client(), migration, guard.environment(), &backup, stamp.as_ref())?;
    }
    Ok(pending.len())
}

/// Differences between two environments' ledgers and schemas; empty when they agree.
pub(crate) fn diff(sh: &Shell, from: &Guard, to: &Guard) -> Result<Vec<String>> {
    let mut sides = Vec::new();
    for guard in [from, to] {
        let target = guard.read::<op::Inspect>()?;
        let ledger = read_ledger(&mut target.connect()?.transaction()?)?;
        let schema = schema::dump(sh, &target.client_args()?, &target.url().address())?;
        sides.push((guard.environment(), ledger, schema));
    }
    let [(a_env, a, a_schema), (b_env, b, b_schema)] = <[_; 2]>::try_from(sides).expect("two sides");
    let mut drift = Vec::new();
    for entry in a.iter().chain(&b).filter(|e| e.outcome != Outcome::Applied) {
        drift.push(format!("{:04}_{} is recorded as failed", entry.version, entry.name));
    }
    for entry in &a {
        match b.iter().find(|e| e.version == entry.version) {
            None => drift.push(format!("{:04}_{} is applied on {a_env} only", entry.version, entry.name)),
            Some(other)
                if !other.checksum.is_empty() && !entry.checksum.is_empty() && other.checksum != entry.checksum =>
            {
                drift.push(format!(
                    "{:04}_{} has another checksum on {a_env} than on {b_env}",
                    entry.version, entry.name
                ))
            }
            Some(_) => {}
        }
    }
    for entry in b.iter().filter(|e| !a.iter().any(|x| x.version == e.version)) {
        drift.push(format!("{:04}_{} is applied on {b_env} only", entry.version, entry.name));
    }
    if let Some(difference) = schema::first_difference(&a_schema, &b_schema) {
        drift.push(format!("schemas differ {difference} ({a_env} expected, {b_env} found)"));
    }
    Ok(drift)
}

/// The highest migration number `migrate new` writes: eight digits, far below where the
/// ledger's `integer` column ends.
const MAX_VERSION: u64 = 99_999_999;
/// Supabase's timestamp versions (`20240101120000`) need more than an integer: widened only
/// for the Supabase layout, so the ledger of numbered pairs keeps its type.
pub(super) const WIDEN_LEDGER: &str = "
do $$
begin
  if exists (select from information_schema.columns where table_schema = 'app_meta' and table_name = 'schema_migrations'
             and column_name = 'version' and data_type = 'integer') then
    alter table app_meta.schema_migrations alter column version type bigint;
  end if;
end
$$;
";

/// The advisory lock that keeps two runs from applying at once.
const LOCK_KEY: i64 = 0x6465_6e74_616c;

pub(crate) fn load_files() -> Result<Vec<Migration>> {
    layout::load()
}

/// Takes the lock, creates the ledger if needed, and decides what to apply.
fn lock_and_plan<'a, O: op::WriteOp>(
    conn: &mut WriteConnection<O>,
    files: &'a [Migration],
    to: Option<u64>,
) -> Result<Vec<&'a Migration>> {
    let client = conn.client();
    lock(client)?;
    client.batch_execute(app::stamp::DDL)?;
    client.batch_execute(app_meta::LEDGER_DDL)?;
    if layout::folder()?.layout.forward_only() {
        client.batch_execute(WIDEN_LEDGER)?;
    }
    plan(files, &read_ledger(client)?, to)
}

/// Takes the session advisory lock, polling: a session blocked in `pg_advisory_lock` holds
/// a transaction open, which the other run's `CREATE INDEX CONCURRENTLY` would wait for,
/// a deadlock.
fn lock(client: &mut Client) -> Result<()> {
    let mut waiting = false;
    loop {
        let locked: bool = client.query_one("select pg_try_advisory_lock($1)", &[&LOCK_KEY])?.get(0);
        if locked {
            return Ok(());
        }
        if !waiting {
            status("waiting for another `migrate` run on this database to finish");
            waiting = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pending migrations, after checking that what was applied is still as it was.
fn plan<'a>(files: &'a [Migration], ledger: &[Entry], to: Option<u64>) -> Result<Vec<&'a Migration>> {
    if let Some(failed) = ledger.iter().find(|e| e.outcome == Outcome::Failed) {
        bail!(
            "migration {:04}_{} failed at {}: {}\nhint: fix the database by hand, then `cargo xtask migrate resolve {} --applied` (its changes are in place) or `--rolled-back` (they are not)",
            failed.version,
            failed.name,
            failed.applied_at,
            failed.error.as_deref().unwrap_or("no error recorded"),
            failed.version
        );
    }
    let mut changed = Vec::new();
    for entry in ledger {
        match files.iter().find(|m| m.version == entry.version) {
            None => {
                changed.push(format!("{:04}_{} (missing: applied, but its file is gone)", entry.version, entry.name))
            }
            Some(m) if !entry.checksum.is_empty() && m.checksum != entry.checksum => {
                changed.push(format!("{} (modified: its checksum differs from the applied one)", m.label()))
            }
            Some(_) => {}
        }
    }
    if !changed.is_empty() {
        bail!(
            "applied migrations changed: {}\nhint: restore the applied files as they were, and put changes in a new migration (`cargo xtask migrate new NAME`)",
            changed.join(", ")
        );
    }
    if let Some(to) = to.filter(|to| !files.iter().any(|m| m.version == *to)) {
        bail!("there is no migration {to:04}\nhint: `cargo xtask migrate status` lists them");
    }
    let newest_applied = ledger.iter().map(|e| e.version).max().unwrap_or(0);
    let pending: Vec<&Migration> = files.iter().filter(|m| !ledger.iter().any(|e| e.version == m.version)).collect();
    if let Some(old) = pending.iter().find(|m| m.version < newest_applied) {
        bail!(
            "pending migration {} is older than the newest applied ({newest_applied:04})\nhint: renumber it after {newest_applied:04}",
            old.label()
        );
    }
    Ok(pending.into_iter().filter(|m| to.is_none_or(|to| m.version <= to)).collect())
}

fn up(sh: &Shell, global: &Global, args: flags::MigrateUp) -> Result<()> {
    let started = Instant::now();
    let mut guard = context::guard(global)?;
    let files = load_files()?;
    if args.dry_run {
        let mut conn = guard.read::<op::Inspect>()?.connect()?;
        let env = guard.environment();
        // The dry run says what the real run would refuse, not just what is pending.
        let stamp = conn.stamp;
        let mut tx = conn.transaction()?;
        match stamp {
            Some(stamp) if stamp != env => bail!(
                "the database is stamped {stamp}, not {env}: `migrate up` would be refused\nhint: select --env {stamp}, or point DATABASE_URL at the {env} database"
            ),
            None => {
                if let Some(found) = app::stamp::what_it_holds(&mut tx)? {
                    bail!(
                        "the database has no environment stamp but holds tables or data of its own ({found}): `migrate up` would be refused\nhint: an existing database is taken over only by `cargo xtask migrate baseline`"
                    );
                }
            }
            _ => {}
        }
        if stamp.is_none() {
            platform::dry_run(env, &guard.resolved().database()?.address(), &mut tx)?;
        }
        check_extensions(&mut tx, &files)?;
        let ledger = read_ledger(&mut tx)?;
        let pending = plan(&files, &ledger, args.to)?;
        for m in &pending {
            let how = if m.up.no_transaction { " (outside a transaction)" } else { "" };
            data(format!("would apply {}{how}", m.label()))?;
        }
        status(format!("dry run: {} pending migration(s) on {}; nothing applied", pending.len(), guard.environment()));
        return Ok(());
    }
    if guard.needs_confirmation::<op::Migrate>() {
        confirm(&mut guard, args.confirm.as_deref())?;
    }
    let env = guard.environment();
    let target = guard.write::<op::Migrate>()?;
    let mut conn = target.connect()?;
    if platform::prepare(&guard, &mut conn, &files)? {
        conn = target.connect()?;
    }
    let stamp = conn.pending_stamp();
    check_extensions(conn.client(), &files)?;
    let pending = lock_and_plan(&mut conn, &files, args.to)?;
    if pending.is_empty() {
        status(format!("{env} is up to date: nothing to apply"));
        return Ok(());
    }
    if matches!(env, Environment::Staging | Environment::Production) {
        lint::refuse_unacknowledged(&pending)?;
    }
    // Where the settings require a backup, the receipt that applying demands is a verified one.
    let backup = target.backed_up(|| backup::take(sh, &guard))?;
    for migration in &pending {
        let took = apply_up(conn.client(), migration, env, &backup, stamp.as_ref())?;
        status(format!("applied {} in {} ms", migration.label(), took.as_millis()));
    }
    status(format!("{env}: applied {} migration(s) in {:.1} s", pending.len(), started.elapsed().as_secs_f64()));
    Ok(())
}

/// Typed confirmation: the production project ref, typed on a terminal or given with
/// `--confirm`. Without a terminal and without `--confirm`, refuse; never auto-accept.
fn confirm(guard: &mut Guard, given: Option<&str>) -> Result<()> {
    let env = guard.environment();
    let typed = crate::ui::printer().typed(
        given,
        &format!("This changes {env}. Type the project ref to continue: "),
        &format!(
            "migrating {env} needs a typed confirmation, and stdin is not a terminal\nhint: pass --confirm <project ref> (see env/environments.toml)"
        ),
    )?;
    guard.confirm(&typed)
}

/// Applies one migration with its ledger row. An unstamped, empty database gets its stamp
/// in the same transaction (`stamp`), so a first migration that fails leaves no stamp.
fn apply_up(
    client: &mut Client,
    m: &Migration,
    env: Environment,
    backup: &BackupTaken<BackupFile>,
    stamp: Option<&PendingStamp>,
) -> Result<Duration> {
    let started = Instant::now();
    let record = Applied { m, env, backup: backup.file(), started };
    if let (true, Some(stamp)) = (m.up.no_transaction, stamp) {
        // The statement can't share a transaction; the stamp goes first, in its own, and
        // only while the database is still empty.
        let mut tx = client.transaction()?;
        stamp.write(&mut tx)?;
        tx.commit()?;
    }
    let mut stamp_error = None;
    let result = if m.up.no_transaction {
        client.batch_execute(&m.up.sql).and_then(|()| record.write(client))
    } else {
        client.transaction().and_then(|mut tx| {
            if let Some(stamp) = stamp {
                if let Err(err) = stamp.write(&mut tx) {
                    stamp_error = Some(err);
                    return Ok(());
                }
            }
            tx.batch_execute(&m.up.sql)?;
            record.write(&mut tx)?;
            tx.commit()
        })
    };
    if let Some(err) = stamp_error {
        return Err(err);
    }
    if let Err(err) = result {
        let message = sql_error(&m.up, &err);
        client
            .execute(
                "insert into app_meta.schema_migrations (version, name, checksum, duration_ms, outcome, environment, error)
                 values ($1::bigint, $2, $3, $4, 'failed', $5, $6)
                 on conflict (version) do update set outcome = 'failed', error = excluded.error, applied_at = now()",
                &[&(m.version as i64), &m.name, &m.checksum, &(started.elapsed().as_millis() as i64), &env.name(), &message],
            )
            .context("cannot record the failed migration in the ledger")?;
        bail!(
            "{message}\nhint: the migration was rolled back{} and recorded as failed; fix it, then `cargo xtask migrate resolve {} --rolled-back`",
            if m.up.no_transaction { " as far as PostgreSQL allows (it ran outside a transaction)" } else { "" },
            m.version
        );
    }
    Ok(started.elapsed())
}

/// The ledger row of a migration that applied, written with it.
struct Applied<'a> {
    m: &'a Migration,
    env: Environment,
    backup: Option<&'a BackupFile>,
    started: Instant,
}

impl Applied<'_> {
    fn write(&self, client: &mut impl GenericClient) -> Result<(), postgres::Error> {
        let (m, took) = (self.m, self.started.elapsed());
        let path = self.backup.map(|b| b.path.display().to_string());
        let bytes = self.backup.map(|b| b.bytes as i64);
        client.execute(
            "insert into app_meta.schema_migrations (version, name, checksum, duration_ms, outcome, environment, backup_path, backup_bytes)
             values ($1::bigint, $2, $3, $4, 'applied', $5, $6, $7)",
            &[&(m.version as i64), &m.name, &m.checksum, &(took.as_millis() as i64), &self.env.name(), &path, &bytes],
        )?;
        // Forward-only migrations are the Supabase layout's: the Supabase CLI's ledger
        // learns of them too, so `supabase migration list` and `db push` agree with us.
        if m.down.is_none() {
            layout::record_in_cli_ledger(client, m)?;
        }
        Ok(())
    }
}

fn apply_down(client: &mut Client, m: &Migration) -> Result<()> {
    fn forget(client: &mut impl GenericClient, version: u64) -> Result<(), postgres::Error> {
        client
            .execute("delete from app_meta.schema_migrations where version = $1::bigint", &[&(version as i64)])
            .map(|_| ())
    }
    let Some(down) = &m.down else { bail!("{} has no down migration", m.up.file) };
    let result = if down.no_transaction {
        client.batch_execute(&down.sql).and_then(|()| forget(client, m.version))
    } else {
        client.transaction().and_then(|mut tx| {
            tx.batch_execute(&down.sql)?;
            forget(&mut tx, m.version)?;
            tx.commit()
        })
    };
    result.map_err(|err| anyhow::anyhow!("{}", sql_error(down, &err)))
}

/// `FILE:LINE: message` (the file's path from the project root), from the server's error
/// position.
fn sql_error(script: &files::Script, err: &postgres::Error) -> String {
    let Some(db) = err.as_db_error() else {
        return format!("{}: {}", script.file, secrets::redact(&app::connect::error_chain(err)));
    };
    let line = match db.position() {
        Some(postgres::error::ErrorPosition::Original(at)) => {
            let before: String = script.sql.chars().take(*at as usize).collect();
            format!(":{}", before.lines().count().max(1))
        }
        _ => String::new(),
    };
    format!("{}{line}: {}", script.file, db.message())
}

fn down(global: &Global, to: Option<u64>) -> Result<()> {
    let folder = layout::folder()?;
    if folder.layout.forward_only() {
        let tool = if folder.layout == layout::Layout::Prisma { "Prisma's" } else { "the Supabase CLI's" };
        bail!(
            "{} is in {tool} layout, which has no down migrations: nothing can be reverted\nhint: write a new migration that undoes the change, or re-create a local database with `cargo xtask db reset`",
            folder.shown
        );
    }
    let guard = context::guard(global)?;
    let files = load_files()?;
    let mut conn = guard.write::<op::MigrateDown>()?.connect()?;
    lock_and_plan(&mut conn, &files, None).map(|_| ())?;
    let ledger = read_ledger(conn.client())?;
    let mut applied: Vec<&Entry> = ledger.iter().rev().collect();
    match to {
        Some(to) => applied.retain(|e| e.version > to),
        None => applied.truncate(1),
    }
    if applied.is_empty() {
        status("nothing to revert");
        return Ok(());
    }
    for entry in applied {
        let Some(m) = files.iter().find(|m| m.version == entry.version) else {
            bail!("cannot revert {:04}_{}: its files are gone", entry.version, entry.name);
        };
        apply_down(conn.client(), m)?;
        status(format!("reverted {}", m.label()));
    }
    Ok(())
}

fn diff_command(sh: &Shell, from: Environment, to: Environment) -> Result<()> {
    let a = context::guard_for(Some(from))?;
    let b = context::guard_for(Some(to))?;
    let drift = diff(sh, &a, &b)?;
    if drift.is_empty() {
        status(format!("{from} and {to} agree: same migrations, same checksums, same schema"));
        return Ok(());
    }
    for line in &drift {
        data(line)?;
    }
    bail!("{from} and {to} have drifted ({} difference(s))", drift.len())
}
