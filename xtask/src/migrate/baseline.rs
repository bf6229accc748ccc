//! `cargo xtask migrate baseline`: adopting a database this project did not create (a
//! Supabase project built by Prisma, the Supabase CLI or by hand). It shows what it finds,
//! proves that the migrations folder describes the live schema (writing the live schema as
//! the first migration when the folder is empty), and after a typed confirmation records
//! the migrations as applied and stamps the database, in one transaction, changing nothing
//! else. It is the only way a database that holds tables gets a stamp.

use anyhow::{Context, Result, bail};
use app::{Environment, Guard, guard::ClientArgs, guard::op, stamp::SUPABASE_SCHEMAS};
use postgres::GenericClient;
use xshell::Shell;

use super::{Applied, layout, load_files, schema};
use crate::app_meta::LEDGER_DDL;
use crate::{
    context::{self, data, status},
    flags::{Global, MigrateBaseline},
    pg::Throwaway,
    ui::{Align, Table},
};

/// The whole command: inspect, prove, confirm, adopt.
pub(crate) fn run(sh: &Shell, global: &Global, args: MigrateBaseline) -> Result<()> {
    let mut guard = context::guard(global)?;
    let env = guard.environment();
    let reader = guard.read::<op::Inspect>()?;
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
    let found = inspect(&mut conn.transaction()?)?;
    show(&found)?;
    let live = app_schema(sh, &reader.client_args()?, &reader.url().address())?;

    let mut migrations = load_files()?;
    let written = if migrations.is_empty() {
        if args.dry_run {
            status("dry run: the folder is empty, so the live schema would become migrations/0001_baseline");
            return Ok(());
        }
        let written = write_first_migration(&live)?;
        migrations = load_files()?;
        Some(written)
    } else {
        None
    };
    let expected = scratch_schema(sh)?;
    if let Some(difference) = schema::first_difference(&expected, &live) {
        if let Some(written) = &written {
            remove(written);
        }
        bail!(
            "the live schema is not what the migrations make: {difference} (the migrations on a scratch cluster expected, {env} found); nothing was changed\nhint: make the migrations folder match the live schema, or baseline into an empty folder to start from the live schema"
        );
    }
    status(format!("the live schema is what the {} migration(s) make", migrations.len()));
    if args.dry_run {
        status(format!("dry run: {env} would be stamped and {} migration(s) recorded as applied", migrations.len()));
        return Ok(());
    }
    if let Err(err) = confirm(&mut guard, args.confirm.as_deref()) {
        if let Some(written) = &written {
            remove(written);
        }
        return Err(err);
    }

    let target = guard.write::<op::Baseline>()?;
    let mut conn = target.connect()?;
    let stamp = conn.pending_stamp().context("the database was stamped meanwhile: nothing to adopt")?;
    let mut tx = conn.client().transaction()?;
    tx.batch_execute(app::stamp::DDL)?;
    tx.batch_execute(LEDGER_DDL)?;
    stamp.write(&mut tx)?;
    let started = std::time::Instant::now();
    for m in &migrations {
        Applied { m, env, backup: None, started }.write(&mut tx)?;
    }
    tx.commit().context("cannot commit the baseline; the database is as it was")?;
    if written.is_some() {
        // What the database already holds is not a change under review: the lint baseline
        // accepts it, so `migrate up` applies it on a new staging too.
        super::lint::accept(&migrations)?;
    }
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

/// The application's schema, normalized: every schema but Supabase's and the project's
/// own bookkeeping, without owners and grants (they name roles another cluster lacks).
fn app_schema(sh: &Shell, args: &ClientArgs, shown: &str) -> Result<String> {
    // Publications and subscriptions belong to the database, not to a schema: the
    // platform's (`supabase_realtime`) is there on every side already.
    let mut options = ["--schema-only", "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions"]
        .map(String::from)
        .to_vec();
    options.extend(SUPABASE_SCHEMAS.iter().map(|s| format!("--exclude-schema={s}")));
    schema::dump_with(sh, args, shown, &options)
}

/// The schema the migrations folder makes, on a scratch cluster bootstrapped as `db up`
/// bootstraps one.
fn scratch_schema(sh: &Shell) -> Result<String> {
    let throwaway = Throwaway::start()?;
    let guard = throwaway.guard()?;
    super::up_all(&guard).context("the migrations do not apply on a scratch cluster")?;
    let target = guard.read::<op::Inspect>()?;
    app_schema(sh, &target.client_args()?, "the scratch cluster")
}

/// The files written for an empty folder.
struct Written {
    up: std::path::PathBuf,
    down: Option<std::path::PathBuf>,
}

/// `migrations/0001_baseline.{up,down}.sql` (in the Supabase layout, one
/// `<timestamp>_baseline.sql`) from the live schema: reviewable SQL, schema only (no data,
/// so no secrets), owners and grants left to the environment.
fn write_first_migration(live: &str) -> Result<Written> {
    let folder = layout::folder()?;
    let dir = &folder.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", folder.shown))?;
    let supabase = folder.layout == layout::Layout::Supabase;
    let (up, down) = if supabase {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        (dir.join(layout::supabase_file_name("baseline", now)), None)
    } else {
        (dir.join("0001_baseline.up.sql"), Some(dir.join("0001_baseline.down.sql")))
    };
    let header = "-- The live schema when this project adopted the database (`cargo xtask migrate baseline`).\n-- Schema only: no data, owners or grants. Review it, commit it; new changes go in new migrations.\n\n";
    std::fs::write(&up, format!("{header}{live}"))?;
    let shown = |p: &std::path::Path| p.strip_prefix(context::project_root()).unwrap_or(p).display().to_string();
    data(shown(&up))?;
    let Some(down) = down else {
        load_files().context("the written baseline does not load")?;
        return Ok(Written { up, down: None });
    };
    let schemas = created_schemas(live);
    let mut down_sql = String::from("-- Reverts 0001_baseline: drops everything the application's schemas hold.\n");
    for name in &schemas {
        down_sql.push_str(&format!("drop schema if exists {name} cascade;\n"));
    }
    down_sql.push_str(&drop_public_objects(live));
    std::fs::write(&down, down_sql)?;
    data(shown(&down))?;
    load_files().context("the written baseline does not load")?;
    Ok(Written { up, down: Some(down) })
}

fn remove(written: &Written) {
    let _ = std::fs::remove_file(&written.up);
    if let Some(down) = &written.down {
        let _ = std::fs::remove_file(down);
    }
}

/// The schemas a dump creates (`CREATE SCHEMA name;`).
fn created_schemas(dump: &str) -> Vec<String> {
    dump.lines().filter_map(|l| l.strip_prefix("CREATE SCHEMA ")?.strip_suffix(';').map(str::to_string)).collect()
}

/// `drop ... cascade` for what the dump creates in `public`, newest kinds first.
fn drop_public_objects(dump: &str) -> String {
    let mut out = String::new();
    for (prefix, kind) in [
        ("CREATE TABLE public.", "table"),
        ("CREATE VIEW public.", "view"),
        ("CREATE MATERIALIZED VIEW public.", "materialized view"),
        ("CREATE SEQUENCE public.", "sequence"),
        ("CREATE TYPE public.", "type"),
        ("CREATE DOMAIN public.", "domain"),
    ] {
        for line in dump.lines().filter(|l| l.starts_with(prefix)) {
            let name: String = line[prefix.len()..]
                .chars()
                .scan(false, |quoted, c| {
                    if c == '"' {
                        *quoted = !*quoted;
                    }
                    (*quoted || !(c == ' ' || c == '(' || c == ';')).then_some(c)
                })
                .collect();
            out.push_str(&format!("drop {kind} if exists public.{name} cascade;\n"));
        }
    }
    for line in dump.lines().filter(|l| l.starts_with("CREATE FUNCTION public.")) {
        if let Some(signature) = line.strip_prefix("CREATE FUNCTION ").and_then(|l| l.split(" RETURNS ").next()) {
            out.push_str(&format!("drop function if exists {signature} cascade;\n"));
        }
    }
    out
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
