//! `cargo xtask migrate baseline`: adopting a database this project did not create (a
//! Supabase project built by Prisma, the Supabase CLI or by hand). It shows what it finds,
//! proves that the migrations folder describes the live schema (writing the live schema as
//! the first migration when the folder is empty), and after a typed confirmation records
//! the migrations as applied and stamps the database, in one transaction, changing nothing
//! else. It is the only way a database that holds tables gets a stamp.

use anyhow::{Context, Result, bail};
use app::{
    Environment, Guard,
    guard::{ReadTarget, op},
    stamp::SUPABASE_SCHEMAS,
};
use postgres::GenericClient;
use xshell::Shell;

use super::{
    Applied, Migration, first_migration, grants, layout, load_files,
    snapshot::{self, Platform, Snapshot},
};
use crate::app_meta::LEDGER_DDL;
use crate::{
    context::{self, data, status},
    flags::{Global, MigrateBaseline},
    throwaway::Throwaway,
    ui::{Align, Table},
};

/// The whole command: inspect, prove, confirm, adopt.
pub(crate) fn run(sh: &Shell, global: &Global, args: MigrateBaseline) -> Result<()> {
    let mut guard = context::guard(global)?;
    let env = guard.environment();
    let reader = guard.read::<op::Inspect>()?;
    let survey = survey(&reader, env, &args.with_data)?;
    let platform = survey.platform;
    let (client_args, shown) = (reader.client_args()?, reader.url().address());
    let mut live = snapshot::take(sh, &client_args, &shown)?;
    if let Some(warning) = grants::restrict(&mut live, platform, &grants::kept_grantees()).warning() {
        context::warn(warning);
    }
    let migrations = load_files()?;
    check_folder(&migrations, &survey)?;
    let mut data_entries = Vec::new();
    for table in &survey.data_tables {
        data_entries.extend(snapshot::table_data(sh, &client_args, &shown, table)?);
    }
    let first = prove(sh, &migrations, &live, platform, &data_entries)?;
    if args.dry_run {
        let count = if first.is_some() { 1 } else { migrations.len() };
        return dry_run(env, first.as_ref(), count);
    }
    confirm(&mut guard, args.confirm.as_deref())?;
    match first {
        None => adopt(&guard, &migrations),
        Some(first) => adopt_with_first(&guard, &first),
    }
}

/// What the live database holds, read in one transaction and shown: refused when it is
/// stamped already.
struct Survey {
    platform: Platform,
    /// The tables `--with-data` names, checked.
    data_tables: Vec<String>,
    prisma_rows: Vec<super::prisma::Row>,
}

fn survey(reader: &ReadTarget<op::Inspect>, env: Environment, with_data: &[String]) -> Result<Survey> {
    let mut conn = reader.connect()?;
    match conn.stamp {
        Some(stamp) if stamp == env => {
            bail!(
                "the database is already this project's: it is stamped {env}\nhint: `cargo xtask migrate status` shows its ledger"
            )
        }
        Some(stamp) => bail!("the database is stamped {stamp}, not {env}: refused\nhint: select --env {stamp}"),
        None => {}
    }
    let mut tx = conn.transaction()?;
    let found = inspect(&mut tx)?;
    let platform = Platform::detect(&mut tx)?;
    let data_tables = with_data_tables(&mut tx, with_data, platform)?;
    let prisma_rows = super::prisma::read(&mut tx)?;
    drop(tx);
    show(&found)?;
    status(match platform {
        Platform::Supabase => "a Supabase database: the platform's schemas, extensions and event triggers are left out",
        Platform::Plain => "a plain PostgreSQL database: every schema is the application's",
    });
    Ok(Survey { platform, data_tables, prisma_rows })
}

/// Refuses `--with-data` beside existing migrations; says when Prisma's ledger holds the
/// folder's history.
fn check_folder(migrations: &[Migration], survey: &Survey) -> Result<()> {
    if !migrations.is_empty() && !survey.data_tables.is_empty() {
        bail!(
            "--with-data puts rows into a new first migration, and {} already holds migrations\nhint: add the rows in a migration of their own (`cargo xtask migrate new NAME`)",
            layout::folder()?.shown
        );
    }
    let folder = layout::folder()?;
    if folder.layout == layout::Layout::Prisma
        && !migrations.is_empty()
        && super::prisma::matches_history(&survey.prisma_rows, migrations, &folder.shown)?
    {
        status(format!(
            "Prisma's ledger holds the folder's history: {} migration(s) applied with the files' checksums",
            migrations.len()
        ));
    }
    Ok(())
}

/// What the real run would do; nothing is changed.
fn dry_run(env: Environment, first: Option<&first_migration::First>, count: usize) -> Result<()> {
    if let Some(first) = first {
        status(format!(
            "dry run: the live schema's {} application object(s) would become the first migration in {}",
            first.objects,
            layout::folder()?.shown
        ));
    }
    status(format!(
        "dry run: {env} would be stamped and {count} migration(s) recorded as applied; nothing was changed"
    ));
    Ok(())
}

/// Writes the composed first migration and adopts the folder with it; the file is removed
/// again when the adoption fails. What the database already holds is not a change under
/// review: the lint baseline accepts it, so `migrate up` applies it on a new staging too.
fn adopt_with_first(guard: &Guard, first: &first_migration::First) -> Result<()> {
    let written = first_migration::write(first)?;
    let adopted = load_files().and_then(|migrations| adopt(guard, &migrations).map(|()| migrations));
    let migrations = match adopted {
        Ok(migrations) => migrations,
        Err(err) => {
            let removed = written.remove();
            return Err(err.context(format!("{removed} removed again")));
        }
    };
    super::lint::accept(&migrations)
}

/// Runs the proof on a scratch cluster bootstrapped as `db up` bootstraps one: snapshot,
/// apply the migrations (or, for an empty folder, the first migration composed from the
/// live schema), snapshot again, and compare what they made with the live database. The
/// composed first migration, when there is one, is returned for writing.
fn prove(
    sh: &Shell,
    migrations: &[Migration],
    live: &Snapshot,
    platform: Platform,
    data_entries: &[snapshot::Entry],
) -> Result<Option<first_migration::First>> {
    let throwaway = Throwaway::start()?;
    let guard = throwaway.guard()?;
    let scratch = guard.read::<op::Inspect>()?.client_args()?;
    let scratch_snapshot = |sh: &Shell| -> Result<Snapshot> {
        let mut taken = snapshot::take(sh, &scratch, "the scratch cluster")?;
        grants::restrict(&mut taken, platform, &grants::kept_grantees());
        Ok(taken)
    };
    let before = scratch_snapshot(sh)?;
    let folder = &layout::folder()?.shown;
    let first = migrations.is_empty().then(|| first_migration::compose(live, &before, platform, data_entries));
    let applied = match &first {
        Some(first) => apply(&guard, &first.up),
        None => super::up_all(&guard).map(|_| ()),
    };
    if let Err(err) = applied {
        let text = format!("{err:#}");
        let message = text.split("\nhint:").next().unwrap_or_default();
        match &first {
            Some(_) => bail!(
                "the live schema, written as a first migration, does not apply on a scratch cluster: {message}; nothing was written or changed\nhint: write the first migration by hand into {folder} (`cargo xtask migrate new baseline`), then run `cargo xtask migrate baseline --dry-run` until it passes"
            ),
            None => bail!(
                "the migrations in {folder} do not apply on a scratch cluster: {message}; nothing was changed\nhint: fix that migration; `cargo xtask migrate baseline --dry-run` runs the proof again"
            ),
        }
    }
    let after = scratch_snapshot(sh)?;
    let Some(difference) = snapshot::difference(&before, &after, live, platform) else {
        let what = if first.is_some() {
            "its first migration".to_string()
        } else {
            format!("the {} migration(s)", migrations.len())
        };
        status(format!("proved on a scratch cluster: the live schema is what {what} make(s)"));
        return Ok(first);
    };
    match first {
        Some(_) => bail!(
            "the live schema does not survive its own dump: {difference}; nothing was written or changed\nhint: write the first migration by hand into {folder} (`cargo xtask migrate new baseline`), then run `cargo xtask migrate baseline --dry-run` until it passes"
        ),
        None => bail!(
            "the live schema is not what the migrations make: {difference}; nothing was changed\nhint: change the migrations in {folder} until `cargo xtask migrate baseline --dry-run` passes, or move them out of {folder} to adopt the live schema as a new first migration"
        ),
    }
}

/// Applies the composed first migration on the scratch cluster, in one transaction as
/// `migrate up` would.
fn apply(guard: &Guard, sql: &str) -> Result<()> {
    let mut conn = guard.write::<op::Migrate>()?.connect()?;
    let mut tx = conn.client().transaction()?;
    tx.batch_execute(sql).map_err(|err| anyhow::anyhow!(crate::sql::server_message(&err)))?;
    tx.commit()?;
    Ok(())
}

/// The tables `--with-data` names, checked: tables of the application, as `schema.name`.
fn with_data_tables(tx: &mut impl GenericClient, named: &[String], platform: Platform) -> Result<Vec<String>> {
    let mut tables = Vec::new();
    for name in named {
        let row = tx.query_opt(
            "select n.nspname, format('%I.%I', n.nspname, c.relname) from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where c.oid = to_regclass($1) and c.relkind in ('r', 'p')",
            &[name],
        );
        let Some(row) = row.ok().flatten() else {
            bail!(
                "--with-data {name}: no such table in the live database\nhint: name a table as schema.name, e.g. public.settings"
            );
        };
        let schema: String = row.get(0);
        if platform.owns_schema(&schema) {
            bail!(
                "--with-data {name}: a table of the platform, whose rows are not the application's to copy\nhint: name a small configuration table of the application"
            );
        }
        tables.push(row.get(1));
    }
    Ok(tables)
}

/// Stamps the database and records the migrations as applied, in one transaction.
fn adopt(guard: &Guard, migrations: &[Migration]) -> Result<()> {
    let env = guard.environment();
    let target = guard.write::<op::Baseline>()?;
    let mut conn = target.connect()?;
    let stamp = conn.pending_stamp().context("the database was stamped meanwhile: nothing to adopt")?;
    let mut tx = conn.client().transaction()?;
    tx.batch_execute(app::stamp::DDL)?;
    tx.batch_execute(LEDGER_DDL)?;
    if layout::folder()?.layout.forward_only() {
        tx.batch_execute(super::WIDEN_LEDGER)?;
    }
    stamp.write(&mut tx)?;
    let started = std::time::Instant::now();
    for m in migrations {
        Applied { m, env, backup: None, started }.write(&mut tx)?;
    }
    tx.commit().context("cannot commit the baseline; the database is as it was")?;
    status(format!(
        "{env} adopted: stamped {env}, {} migration(s) recorded as applied; nothing else changed",
        migrations.len()
    ));
    Ok(())
}

/// What a database holds: its application tables with estimated rows, and the ledgers
/// other tools leave.
struct Found {
    tables: Vec<(String, i64)>,
    ledgers: Vec<String>,
}

fn inspect(tx: &mut impl GenericClient) -> Result<Found> {
    let skipped: Vec<String> = SUPABASE_SCHEMAS.iter().map(|s| s.to_string()).collect();
    let tables = tx
        .query(
            "select format('%I.%I', n.nspname, c.relname), greatest(c.reltuples, 0)::bigint
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and n.nspname <> 'information_schema'
               and n.nspname not like 'pg\\_%' and n.nspname <> all($1)
             order by 1",
            &[&skipped],
        )
        .context("cannot list the database's tables")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut ledgers = Vec::new();
    let prisma = "select count(*), max(migration_name) from public._prisma_migrations where finished_at is not null";
    let supabase =
        "select count(*), max(version || '_' || coalesce(name, '')) from supabase_migrations.schema_migrations";
    for (tool, table, sql) in [
        ("Prisma", "public._prisma_migrations", prisma),
        ("Supabase CLI", "supabase_migrations.schema_migrations", supabase),
    ] {
        let exists: bool = tx.query_one("select to_regclass($1) is not null", &[&table])?.get(0);
        if !exists {
            continue;
        }
        match tx.query_one(sql, &[]) {
            Ok(row) => {
                let (count, latest): (i64, Option<String>) = (row.get(0), row.get(1));
                ledgers.push(format!(
                    "{tool} ledger {table}: {count} applied, latest {}",
                    latest.unwrap_or_else(|| "-".into())
                ));
            }
            Err(_) => ledgers.push(format!("{tool} ledger {table}: present, in a shape this tool doesn't read")),
        }
    }
    Ok(Found { tables, ledgers })
}

fn show(found: &Found) -> Result<()> {
    let mut table = Table::new(&[("table", Align::Left), ("rows (est.)", Align::Right)]);
    for (name, rows) in &found.tables {
        table.row([name.to_string(), rows.to_string()]);
    }
    table.print_data()?;
    for ledger in &found.ledgers {
        data(ledger)?;
    }
    status(format!("found {} table(s) and {} other tool ledger(s)", found.tables.len(), found.ledgers.len()));
    Ok(())
}

/// A typed confirmation naming the environment: the production project's ref, or the
/// environment's name. Never auto-accepted without a terminal or `--confirm`.
fn confirm(guard: &mut Guard, given: Option<&str>) -> Result<()> {
    let env = guard.environment();
    let expected = match env {
        Environment::Production => guard.all_settings().production_ref().unwrap_or("production").to_string(),
        other => other.to_string(),
    };
    let typed = crate::ui::printer().typed(
        given,
        &format!("This adopts the {env} database: it gets a stamp and a ledger. Type `{expected}` to continue: "),
        &format!(
            "adopting {env} needs a typed confirmation, and stdin is not a terminal\nhint: pass --confirm {expected}"
        ),
    )?;
    if env == Environment::Production {
        return guard.confirm(&typed);
    }
    if typed.trim() != expected {
        bail!("confirmation does not match: type `{expected}` to adopt {env}\nhint: or pass --confirm {expected}");
    }
    Ok(())
}
