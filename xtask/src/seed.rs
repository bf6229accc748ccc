//! `cargo xtask seed`: deterministic, realistic clinic data for local, staging and test.
//!
//! The same `--seed` and options give byte-identical rows, ids included: every value comes
//! from ChaCha8 streams derived from the seed and the value's place (see `seed/random.rs`),
//! dates end on a fixed day (`seed/calendar.rs`), and nothing reads the clock. Clinics are
//! generated one at a time from their own streams (`seed/model.rs`, `seed/accounts.rs`,
//! `seed/daily.rs`) and streamed table by table into binary `COPY` (`seed/tables.rs`,
//! `seed/copy.rs`), the big tables' indexes and foreign keys re-created after the load
//! (`bulk.rs`). On local and test, `cargo xtask seed` builds the new state in a copy beside
//! the database over several connections and swaps it in (`seed/beside.rs`,
//! `app::guard::Beside`); elsewhere, and for the other commands' seeds, all in one
//! transaction. Either way a failed or killed seed leaves the database as it was.

mod accounts;
mod beside;
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
        seed_keeping(&guard, &options, self.replace, self.replace && !self.no_restore_point, true)
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
/// In place, in one transaction (the other commands' seeds: `db up`, rehearsals, benchmarks).
pub(crate) fn seed(guard: &Guard, options: &Options, replace: bool) -> Result<()> {
    seed_keeping(guard, options, replace, false, false)
}

/// [`seed`], first keeping the database as it is as its restore point when `keep`. With
/// `beside`, on local and test, the new state is built beside the database and swapped in
/// ([`seed_beside`]); elsewhere (staging), or where no build can be made, in place.
fn seed_keeping(guard: &Guard, options: &Options, replace: bool, keep: bool, beside: bool) -> Result<()> {
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
    // The stamp check first, whichever the path: its refusal is the same.
    let stamped = target.connect()?.environment();
    let beside = beside && in_place_forced().is_none() && guard.write::<op::Undo>().is_ok();
    if beside && stamped == env && seed_beside(guard, options, replace, keep)? {
        return Ok(());
    }
    if keep {
        crate::restore_point::keep_restore_point(guard, "seed --replace")?;
    }
    let mut conn = target.connect()?;
    announce(guard, options, "in place, one transaction");
    let started = Instant::now();
    let report = load(&mut conn, options, replace)?;
    summary(&report, started.elapsed().as_secs_f64(), "total (one transaction, committed)");
    logins(options);
    Ok(())
}

/// `XTASK_SEED_IN_PLACE=1` seeds local and test in place too, as staging is: for the
/// benchmark's side-by-side figure and the test that both paths give the same rows.
fn in_place_forced() -> Option<String> {
    std::env::var("XTASK_SEED_IN_PLACE").ok().filter(|v| v == "1")
}

/// Seeds a copy of the database beside it over several connections, verifies it, and
/// swaps it in; the replaced database becomes the restore point with `keep`, else is
/// dropped. `false` when no copy could be made (someone else is connected): nothing
/// changed, and the caller seeds in place.
fn seed_beside(guard: &Guard, options: &Options, replace: bool, keep: bool) -> Result<bool> {
    let started = Instant::now();
    let mut build = match guard.build_beside()? {
        Ok(build) => build,
        Err(why) => {
            context::warn(format!("not built beside the database: {why}; seeding in place"));
            return Ok(false);
        }
    };
    announce(guard, options, &format!("built beside it in {}, then swapped in", build.name()));
    status(format!("copied the database beside it in {:.2} s", started.elapsed().as_secs_f64()));
    let report = match beside::load(build.guard(), options, replace) {
        Ok(report) => report,
        Err(err) => {
            // The build is dropped; should that fail too, the next command drops it.
            let _ = build.abandon();
            return Err(err);
        }
    };
    let mut keep = keep;
    if keep && let Some(why) = build.restore_point_refused()? {
        context::warn(format!("no restore point kept: {why}"));
        keep = false;
    }
    let swapping = Instant::now();
    if let Some(why) = build.swap(keep.then_some("seed --replace"))? {
        bail!(
            "{why}: the seeded database was not swapped in; the database is as it was\nhint: close them (the app, a psql) and seed again"
        );
    }
    crate::restore_point::spawn_drop_replaced(guard.environment());
    status(format!("swapped in in {:.2} s", swapping.elapsed().as_secs_f64()));
    summary(&report, started.elapsed().as_secs_f64(), "total (built beside, verified, swapped in)");
    if keep {
        status("kept the database as it was as its restore point (`cargo xtask db undo` swaps it back)");
    }
    logins(options);
    Ok(true)
}

fn announce(guard: &Guard, options: &Options, how: &str) {
    let address = guard.resolved().database().map(|url| url.address()).unwrap_or_default();
    status(format!(
        "seeding {} ({address}): profile {}, {} clinic(s), {} day(s) ending {}, seed {} ({how})",
        guard.environment(),
        options.profile_name(),
        options.clinics,
        options.days,
        String::from_utf8_lossy(&calendar::END.text()),
        options.seed
    ));
}

fn logins(options: &Options) {
    status(format!(
        "logins: {{owner,admin,provider,staff,viewer}}@clinic1..{}.{}, password {}",
        options.clinics,
        model::EMAIL_DOMAIN,
        model::PASSWORD
    ));
}

/// Seeds a build database (`db reset`'s rebuild beside the target): over several
/// connections, as nobody sees it before the swap.
pub(crate) fn into_build(guard: &Guard, options: &Options) -> Result<()> {
    announce(guard, options, "into the build database");
    let started = Instant::now();
    let report = beside::load(guard, options, false)?;
    summary(&report, started.elapsed().as_secs_f64(), "total (built beside)");
    logins(options);
    Ok(())
}

/// `db up` (first creation) and `db reset`: the realistic profile with the default seed,
/// unless the environment's settings forbid test data; `build`: into a build database
/// (`db reset` beside the target), over several connections.
pub(crate) fn realistic(guard: &Guard, build: bool) -> Result<()> {
    if !guard.allows::<op::Seed>() {
        status(format!("not seeded: allow_test_data = false for {}", guard.environment()));
        return Ok(());
    }
    let missing = missing_tables(&mut guard.read::<op::Inspect>()?.connect()?.transaction()?)?;
    if let Some(table) = missing.first() {
        status(format!("not seeded: the schema has no {table} (the migrations do not create it)"));
        return Ok(());
    }
    let options = Options::new(Profile::Realistic, None, None, 1)?;
    if build {
        return into_build(guard, &options);
    }
    seed(guard, &options, false)
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

fn summary(report: &Report, seconds: f64, total: &str) {
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
    let rows: u64 = report.tables.iter().map(|l| l.rows).sum();
    let rate = rows as f64 / seconds.max(1e-6);
    table.row([total.to_string(), rows.to_string(), format!("{seconds:.2}"), format!("{rate:.0}")]);
    status("");
    table.print_status();
}
