//! `cargo xtask seed`: deterministic, realistic clinic data for local, staging and test.
//!
//! The same `--seed` and options give byte-identical rows, ids included: every value comes
//! from ChaCha8 streams derived from the seed and the value's place (see `seed/random.rs`),
//! dates end on a fixed day (`seed/calendar.rs`), and nothing reads the clock. Clinics are
//! generated one at a time from their own streams (`seed/model.rs`, `seed/accounts.rs`,
//! `seed/daily.rs`) and streamed table by table into binary `COPY` (`seed/tables.rs`,
//! `seed/copy.rs`), the big tables' indexes and foreign keys re-created after the load
//! (`bulk.rs`), all in one transaction: a failed or killed seed leaves the database
//! as it was.

mod accounts;
pub(crate) mod calendar;
mod copy;
mod daily;
pub(crate) mod model;
mod random;
pub(crate) mod tables;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use app::{
    Guard,
    guard::{WriteConnection, op},
};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use postgres::{GenericClient, Transaction};

use crate::{
    context::{self, status},
    flags::{self, Global, Profile},
    sql,
};
pub(crate) use copy::Loaded;
use tables::{Seeder, TABLES};

impl flags::Seed {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let options = Options::new(self.profile, self.clinics, self.days, self.seed)?;
        let guard = context::guard(global)?;
        seed_keeping(&guard, &options, self.replace, self.replace && !self.no_restore_point)
    }
}

/// What to seed: a profile, scaled by `--clinics` and `--days`, and the random seed.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub profile: Profile,
    pub clinics: u32,
    pub days: u32,
    pub seed: u64,
}

/// At most this many days (from 2002 on): enough for any test, and dates stay sane.
const MAX_DAYS: u32 = 9_000;

impl Options {
    pub(crate) fn new(profile: Profile, clinics: Option<u32>, days: Option<u32>, seed: u64) -> Result<Options> {
        let (default_clinics, default_days) = match profile {
            Profile::Minimal => (2, 14),
            Profile::Realistic => (5, 730),
            Profile::Large => (150, 1_095),
        };
        let (clinics, days) = (clinics.unwrap_or(default_clinics), days.unwrap_or(default_days));
        if clinics == 0 || clinics > 100_000 {
            bail!("--clinics must be between 1 and 100000, not {clinics}");
        }
        if days == 0 || days > MAX_DAYS {
            bail!("--days must be between 1 and {MAX_DAYS}, not {days}");
        }
        Ok(Options { profile, clinics, days, seed })
    }

    fn profile_name(&self) -> &'static str {
        match self.profile {
            Profile::Minimal => "minimal",
            Profile::Realistic => "realistic",
            Profile::Large => "large",
        }
    }
}

/// Seeds the guard's environment: refused where the matrix or the environment's settings
/// say no (before any connection), and where the database's stamp disagrees.
pub(crate) fn seed(guard: &Guard, options: &Options, replace: bool) -> Result<()> {
    seed_keeping(guard, options, replace, false)
}

/// [`seed`], first keeping the database as it is as its restore point when `keep`.
fn seed_keeping(guard: &Guard, options: &Options, replace: bool, keep: bool) -> Result<()> {
    let env = guard.environment();
    let target = guard.write::<op::Seed>()?;
    // Asked through a load-testing target, as `load` does: the matrix's answer comes with it.
    if options.profile == Profile::Large
        && guard.write::<op::LoadTesting>().is_ok_and(|t| t.is_limited())
        && !context::is_quiet()
    {
        context::warn(format!(
            "the access matrix says load testing is limited on {env}: the large profile may be slow here and fill the disk"
        ));
    }
    if keep {
        crate::restore_point::keep_restore_point(guard, "seed --replace")?;
    }
    let mut conn = target.connect()?;
    status(format!(
        "seeding {env} ({}): profile {}, {} clinic(s), {} day(s) ending {}, seed {}",
        target.url().address(),
        options.profile_name(),
        options.clinics,
        options.days,
        String::from_utf8_lossy(&calendar::END.text()),
        options.seed
    ));
    let started = Instant::now();
    let report = load(&mut conn, options, replace)?;
    summary(&report, started.elapsed().as_secs_f64());
    status(format!(
        "logins: {{owner,admin,provider,staff,viewer}}@clinic1..{}.{}, password {}",
        options.clinics,
        model::EMAIL_DOMAIN,
        model::PASSWORD
    ));
    Ok(())
}

/// `db up` (first creation) and `db reset`: the realistic profile with the default seed,
/// unless the environment's settings forbid test data.
pub(crate) fn realistic(guard: &Guard) -> Result<()> {
    if !guard.allows::<op::Seed>() {
        status(format!("not seeded: allow_test_data = false for {}", guard.environment()));
        return Ok(());
    }
    let missing = missing_tables(&mut guard.read::<op::Inspect>()?.connect()?.transaction()?)?;
    if let Some(table) = missing.first() {
        status(format!("not seeded: the schema has no {table} (the migrations do not create it)"));
        return Ok(());
    }
    seed(guard, &Options::new(Profile::Realistic, None, None, 1)?, false)
}

/// The seeded tables the database does not have.
fn missing_tables(client: &mut impl GenericClient) -> Result<Vec<String>> {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let rows = client.query("select name from unnest($1::text[]) name where to_regclass(name) is null", &[&names])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What a load did: rows and time per table, and the time re-creating indexes and foreign
/// keys took.
#[derive(Debug)]
pub(crate) struct Report {
    pub tables: Vec<Loaded>,
    pub rebuild_seconds: f64,
}

/// Loads the dataset in one transaction, committed only when every table is in and every
/// foreign key checked: the tables must be empty (or `replace` empties them here), then
/// each is streamed through COPY, with its indexes and foreign keys re-created after.
pub(crate) fn load(conn: &mut WriteConnection<op::Seed>, options: &Options, replace: bool) -> Result<Report> {
    let env = conn.environment();
    let seeder = Seeder {
        seed: options.seed,
        clinics: options.clinics,
        calendar: calendar::Calendar::ending_at_end(options.days),
    };
    // Dropped without commit on any error: the server rolls everything back.
    let mut tx = conn.client().transaction()?;
    let emptied = prepare(&mut tx, env, replace)?;
    let deferred = crate::bulk::Deferred::drop(&mut tx, &emptied, crate::bulk::Scope::Unreferenced)?;
    let progress = Progress::new();
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in &TABLES {
        let mut writer = copy::TableWriter::start(&mut tx, table.name, table.columns, table.freeze, progress.bar())?;
        (table.write)(&seeder, &mut writer).with_context(|| format!("cannot load {}", table.name))?;
        tables.push(writer.finish(table.name)?);
    }
    let started = Instant::now();
    let bar = progress.step("indexes and foreign keys");
    deferred.restore(&mut tx)?;
    bar.finish();
    let rebuild_seconds = started.elapsed().as_secs_f64();
    tx.commit().context("cannot commit the seed")?;
    Ok(Report { tables, rebuild_seconds })
}

/// Locks the seeded tables, refuses if they hold data (unless `replace`), and empties them
/// (with the seeded logins), which also lets COPY write their rows frozen; returns the
/// tables it emptied.
fn prepare(tx: &mut Transaction, env: app::Environment, replace: bool) -> Result<Vec<&'static str>> {
    if let Some(table) = missing_tables(tx)?.first() {
        if table.starts_with("auth.") {
            bail!(
                "the {env} database has no {table}: seed refused\nhint: it was made before the bootstrap had Supabase's full auth schema; `cargo xtask db reset --env {env}` re-creates it"
            );
        }
        bail!(
            "the {env} database has no {table}: seed refused\nhint: `cargo xtask migrate up --env {env}` creates the schema first"
        );
    }
    let public: Vec<&'static str> = TABLES.iter().filter(|t| t.freeze).map(|t| t.name).collect();
    let list = public.join(", ");
    tx.batch_execute(&format!("lock table {list} in access exclusive mode"))
        .context("cannot lock the seeded tables")?;
    let seeded_logins = format!("%.{}", model::EMAIL_DOMAIN);
    let mut probes: Vec<String> =
        public.iter().map(|t| format!("select {}::text where exists (select from {t})", sql::literal(t))).collect();
    probes.push("select 'auth.users'::text where exists (select from auth.users where email like $1)".to_string());
    let holding: Vec<String> =
        tx.query(&probes.join(" union all "), &[&seeded_logins])?.iter().map(|r| r.get(0)).collect();
    if !holding.is_empty() && !replace {
        let shown = if holding.len() > 3 {
            format!("{} and {} more", holding[..3].join(", "), holding.len() - 3)
        } else {
            holding.join(", ")
        };
        bail!(
            "the {env} database already holds data ({shown}): seed refused\nhint: `cargo xtask seed --replace` empties the seeded tables first, in the same transaction"
        );
    }
    tx.batch_execute(&format!("truncate table {list}")).context("cannot empty the seeded tables")?;
    tx.execute("delete from auth.users where email like $1", &[&seeded_logins])
        .context("cannot remove the previously seeded logins")?;
    Ok(public)
}

/// A bar per table on a terminal (rows, rows/s); nothing otherwise, or when quiet.
struct Progress {
    multi: MultiProgress,
}

impl Progress {
    fn new() -> Progress {
        Progress { multi: crate::ui::printer().progress() }
    }

    fn bar(&self) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::no_length());
        let style = ProgressStyle::with_template("{prefix:>32} {spinner} {human_pos:>10} rows {rate:>14}  {elapsed}")
            .expect("a valid template")
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} rows/s", state.per_sec());
            });
        bar.set_style(style);
        bar
    }

    /// A spinner for a step without rows.
    fn step(&self, name: &'static str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::no_length());
        bar.set_style(ProgressStyle::with_template("{prefix:>32} {spinner} {elapsed}").expect("a valid template"));
        bar.set_prefix(name);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}

fn summary(report: &Report, seconds: f64) {
    use crate::ui::{Align, Table};
    let mut table = Table::new(&[
        ("table", Align::Left),
        ("rows", Align::Right),
        ("seconds", Align::Right),
        ("rows/s", Align::Right),
    ]);
    for l in &report.tables {
        let rate = l.rows as f64 / l.seconds.max(1e-6);
        table.row([l.table.to_string(), l.rows.to_string(), format!("{:.2}", l.seconds), format!("{rate:.0}")]);
    }
    table.row(["indexes and foreign keys".to_string(), String::new(), format!("{:.2}", report.rebuild_seconds)]);
    let total: u64 = report.tables.iter().map(|l| l.rows).sum();
    let rate = total as f64 / seconds.max(1e-6);
    table.row([
        "total (one transaction, committed)".to_string(),
        total.to_string(),
        format!("{seconds:.2}"),
        format!("{rate:.0}"),
    ]);
    status("");
    table.print_status();
}
