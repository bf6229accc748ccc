//! `cargo xtask bench stage-sync`: on two throwaway clusters, time `stage-sync` next to
//! `pg_dump -Fc | pg_restore`, `pg_dump -Fd -j2` + `pg_restore -j2` and a raw unmasked COPY
//! pipe of the same data into fresh databases, side by side in one run, for two sources: the
//! `large` seed with the project's rules, and a generated Prisma-style schema (`generated.rs`:
//! text keys, few indexes) with the rules `stage-sync init-rules` writes for it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use app::guard::op;
use xshell::{Shell, cmd};

use crate::{context, generated, migrate, throwaway::Throwaway};

/// The targets for stage-sync, as ratios of its time to the other tools'.
pub(crate) const TARGET_J2: f64 = 0.75;
pub(crate) const TARGET_RAW: f64 = 1.0;
pub(crate) const TARGET_PEAK_MB: f64 = 150.0;

/// Which source the four tools copy.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Schema {
    /// The project's migrations seeded with the `large` profile (`None`: its 150 clinics).
    Large { clinics: Option<u64> },
    /// The generated Prisma-style schema with about this many rows.
    Generated { rows: u64 },
}

impl Schema {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Schema::Large { .. } => "large seed",
            Schema::Generated { .. } => "generated schema",
        }
    }
}

/// One schema's figures: each tool's best of two rounds.
#[derive(Clone, Debug)]
pub(crate) struct Figures {
    pub schema: &'static str,
    pub rows: i64,
    pub sync: Duration,
    pub raw: Duration,
    pub dump_j2: Duration,
    pub dump: Duration,
    pub peak_kb: u64,
    /// The longest read of a session reading the target every 50 ms during the syncs.
    pub reader_wait: Duration,
}

impl Figures {
    /// stage-sync's time over another tool's.
    pub(crate) fn ratio(&self, other: Duration) -> f64 {
        self.sync.as_secs_f64() / other.as_secs_f64()
    }

    pub(crate) fn peak_mb(&self) -> f64 {
        self.peak_kb as f64 / 1024.0
    }

    /// The table and the target lines, on stdout.
    pub(crate) fn print(&self) -> Result<()> {
        let rows = self.rows as f64;
        context::data(format!("{}: rows in the source: {}", self.schema, self.rows))?;
        context::data(format!("{:<56} {:>8} {:>10} {:>13}", "tool", "seconds", "rows/s", "x stage-sync"))?;
        for (tool, took) in [
            ("stage-sync (masked, verified)", self.sync),
            ("raw COPY pipe (no masking, one stream, indexes rebuilt)", self.raw),
            ("pg_dump -Fd -j2 + pg_restore -j2", self.dump_j2),
            ("pg_dump -Fc | pg_restore", self.dump),
        ] {
            let secs = took.as_secs_f64();
            let times = secs / self.sync.as_secs_f64();
            context::data(format!("{tool:<56} {secs:>8.2} {:>10.0} {times:>13.2}", rows / secs))?;
        }
        context::data(format!(
            "ratio stage-sync / pg_dump -Fd -j2 + pg_restore -j2: {:.2} (target <= {TARGET_J2})",
            self.ratio(self.dump_j2)
        ))?;
        context::data(format!(
            "ratio stage-sync / raw COPY pipe: {:.2} (target <= {TARGET_RAW:.1})",
            self.ratio(self.raw)
        ))?;
        context::data(format!("ratio stage-sync / pg_dump -Fc | pg_restore: {:.2}", self.ratio(self.dump)))?;
        context::data(format!("stage-sync peak memory: {:.0} MB (target <= {TARGET_PEAK_MB:.0} MB)", self.peak_mb()))?;
        context::data(format!(
            "longest wait of a reader querying the target every 50 ms during stage-sync: {} ms (target < {} ms)",
            self.reader_wait.as_millis(),
            super::readers::TARGET_WAIT.as_millis()
        ))?;
        Ok(())
    }
}

/// Runs the benchmark for each schema in turn and prints each one's table on stdout as it
/// is done: each tool's best of two rounds, run in turns so that they share the machine's
/// state alike.
pub(crate) fn run(sh: &Shell, schemas: &[Schema]) -> Result<Vec<Figures>> {
    let mut all = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        if i > 0 {
            context::data("")?;
        }
        let figures = measure(sh, *schema)?;
        figures.print()?;
        all.push(figures);
    }
    Ok(all)
}

fn measure(sh: &Shell, schema: Schema) -> Result<Figures> {
    context::status(format!("stage-sync benchmark: setting up the {}", schema.name()));
    let pair = Pair::new(schema)?;
    let (mut sync, mut dump, mut dump_j2, mut raw) = (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut peak_kb, mut breakdown, mut reader_wait) = (0, String::new(), Duration::ZERO);
    for round in 0..2 {
        context::status(format!("{}: round {} of 2", schema.name(), round + 1));
        dump = dump.min(dump_restore(sh, &pair.source, &pair.target, round)?);
        dump_j2 = dump_j2.min(dump_restore_parallel(sh, &pair.source, &pair.target, round)?);
        raw = raw.min(raw_pipe(sh, &pair.source, &pair.target, round)?);
        let ((took, peak, summary), wait) = super::readers::watch(&pair.target, || pair.sync())?;
        reader_wait = reader_wait.max(wait);
        if took < sync {
            breakdown = summary;
        }
        sync = sync.min(took);
        peak_kb = peak_kb.max(peak);
    }
    // Where stage-sync's time went in its faster round: its own table, per table and step.
    context::status(format!("{}: stage-sync's own summary of its faster round:{breakdown}", schema.name()));
    Ok(Figures { schema: schema.name(), rows: pair.rows, sync, raw, dump_j2, dump, peak_kb, reader_wait })
}

/// Stage-sync's peak memory (kB) on one run of a source of this schema, and its rows: the
/// memory check of `cargo xtask bench` (flat in the rows), without the other tools.
pub(crate) fn peak_kb(schema: Schema) -> Result<(i64, u64)> {
    context::status(format!("stage-sync memory: setting up the {}", schema.name()));
    let pair = Pair::new(schema)?;
    let (_, peak, _) = pair.sync()?;
    Ok((pair.rows, peak))
}

/// `cargo xtask ci`'s section: a seeded source synced into a target with the project's
/// rules, verified (leak check included) before it commits.
pub(crate) fn end_to_end() -> Result<()> {
    let pair = Pair::new(Source::Seed { profile: "minimal", clinics: None })?;
    let (took, _, _) = pair.sync()?;
    context::status(format!("stage-sync end to end: {} rows, verified, in {:.1} s", pair.rows, took.as_secs_f64()));
    Ok(())
}

/// What the source holds.
enum Source {
    /// The project's migrations and a seed profile.
    Seed { profile: &'static str, clinics: Option<u64> },
    /// The generated schema with about this many rows.
    Generated { rows: u64 },
}

impl From<Schema> for Source {
    fn from(schema: Schema) -> Source {
        match schema {
            Schema::Large { clinics } => Source::Seed { profile: "large", clinics },
            Schema::Generated { rows } => Source::Generated { rows },
        }
    }
}

/// A filled source, known as production through a login that names the production project
/// (as Supabase's pooler logins do), and a test target with the same schema, empty.
struct Pair {
    source: Throwaway,
    target: Throwaway,
    scratch: Scratch,
    rows: i64,
}

impl Pair {
    fn new(source_kind: impl Into<Source>) -> Result<Pair> {
        let source_kind = source_kind.into();
        let root = context::project_root();
        let source = Throwaway::start()?;
        let target = Throwaway::start()?;
        match &source_kind {
            Source::Seed { profile, clinics } => {
                for cluster in [&source, &target] {
                    migrate::up_all(&cluster.guard()?)?;
                }
                let mut seed = Command::new(context::xtask_exe()?);
                seed.args(["--quiet", "seed", "--env", "test", "--profile", profile]);
                if let Some(clinics) = clinics {
                    seed.args(["--clinics", &clinics.to_string()]);
                }
                run_child(seed.env("DATABASE_URL", source.url("postgres")))?;
            }
            Source::Generated { rows } => {
                let mut conn = source.guard()?.write::<op::LoadTesting>()?.connect()?;
                for statement in generated::populated(*rows) {
                    conn.client().batch_execute(&statement).context("cannot fill the generated schema")?;
                }
                let mut conn = target.guard()?.write::<op::LoadTesting>()?.connect()?;
                conn.client().batch_execute(&generated::schema()).context("cannot create the generated schema")?;
            }
        }
        let settings = app::Settings::load(&root)?;
        let prod_ref = settings.production_ref().context("no production project in env/environments.toml")?.to_string();
        let role = format!("postgres.{prod_ref}");
        // The source poses as production: its login names the production project, and its
        // stamp says so (stage-sync refuses a source stamped as another environment).
        let mut conn = source.guard()?.write::<op::LoadTesting>()?.connect()?;
        let (role, password) = (crate::sql::ident(&role), crate::sql::literal(Throwaway::password()));
        conn.client().batch_execute(&format!(
            "create role {role} login superuser password {password}; alter role {role} set role postgres; analyze;
             update app_meta.environment_stamp set environment = 'production';"
        ))?;
        let rows: i64 = conn
            .client()
            .query_one(
                "select coalesce(sum(n_live_tup), 0)::bigint from pg_stat_user_tables where schemaname = 'public'",
                &[],
            )?
            .get(0);
        drop(conn);
        let production_url = source.url("postgres").replacen("postgres:", &format!("{role}:"), 1);
        let scratch = match source_kind {
            Source::Seed { .. } => Scratch::new(&root, &production_url, Rules::Project)?,
            Source::Generated { .. } => Scratch::new(&root, &production_url, Rules::InitRules)?,
        };
        Ok(Pair { source, target, scratch, rows })
    }

    /// One stage-sync run, as its own process: its wall time, peak memory (kB) and the
    /// summary table it printed.
    /// The target stands for staging, which keeps no restore point: none is copied here.
    fn sync(&self) -> Result<(Duration, u64, String)> {
        let started = Instant::now();
        let out = run_child(
            Command::new(context::xtask_exe()?)
                .args(["stage-sync", "--from", "production", "--to", "test", "--yes", "--no-restore-point"])
                .env(context::ROOT_VAR, &self.scratch.root)
                .env("DATABASE_URL", self.target.url("postgres"))
                .env(crate::PEAK_MEMORY_VAR, "1"),
        )?;
        let took = started.elapsed();
        let summary = out.split_once("\n\n").map(|(_, table)| table).unwrap_or_default();
        let summary = summary.lines().filter(|l| !l.starts_with("peak-memory-kb:")).collect::<Vec<_>>().join("\n");
        Ok((took, parse_peak(&out), format!("\n{summary}")))
    }
}

/// `pg_dump -Fc | pg_restore` of the source into a fresh database on the target's cluster.
fn dump_restore(sh: &Shell, source: &Throwaway, target: &Throwaway, round: usize) -> Result<Duration> {
    let db = fresh_database(target, &format!("restore_bench_{round}"))?;
    let bins = crate::pg::Binaries::find()?;
    let (dump, restore) = (bins.dir.join("pg_dump"), bins.dir.join("pg_restore"));
    let script =
        format!("{} -Fc --dbname=\"$FROM\" | {} --no-owner --dbname=\"$TO\"", dump.display(), restore.display());
    time_script(sh, &script, source.url("postgres"), target.url(&db)).context("pg_dump | pg_restore failed")
}

/// `pg_dump -Fd -j2` into a directory, then `pg_restore -j2` from it: both cores, as people
/// speed these tools up. The directory format is the only one `pg_dump -j` writes, so the
/// two steps cannot overlap.
fn dump_restore_parallel(sh: &Shell, source: &Throwaway, target: &Throwaway, round: usize) -> Result<Duration> {
    let db = fresh_database(target, &format!("restore_j2_bench_{round}"))?;
    let dir = std::env::temp_dir().join(format!("xtask-bench-dump-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bins = crate::pg::Binaries::find()?;
    let (dump, restore) = (bins.dir.join("pg_dump"), bins.dir.join("pg_restore"));
    let script = format!(
        "{} -Fd -j2 -f '{dir}' --dbname=\"$FROM\" && {} -j2 --no-owner --dbname=\"$TO\" '{dir}'",
        dump.display(),
        restore.display(),
        dir = dir.display()
    );
    let took = time_script(sh, &script, source.url("postgres"), target.url(&db));
    let _ = std::fs::remove_dir_all(&dir);
    took.context("pg_dump -Fd -j2 + pg_restore -j2 failed")
}

/// The floor for a copy without masking: the schema restored without its indexes and keys,
/// every table's rows piped `COPY TO` -> `COPY FROM` one table after another (one stream,
/// `psql` to `psql`), then the indexes and keys built, as `pg_restore` orders it.
fn raw_pipe(sh: &Shell, source: &Throwaway, target: &Throwaway, round: usize) -> Result<Duration> {
    let db = fresh_database(target, &format!("raw_bench_{round}"))?;
    let bins = crate::pg::Binaries::find()?;
    let (dump, restore, psql) = (bins.dir.join("pg_dump"), bins.dir.join("pg_restore"), bins.dir.join("psql"));
    let mut from = source.guard()?.read::<op::Inspect>()?.connect()?;
    let tables: Vec<String> = from
        .transaction()?
        .query(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
               and n.nspname not like 'pg_toast%'
               and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')",
            &[],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    drop(from);
    let section = |name: &str| {
        format!(
            "{} -Fc --section={name} --dbname=\"$FROM\" | {} --no-owner --dbname=\"$TO\"\n",
            dump.display(),
            restore.display()
        )
    };
    let mut script = String::from("set -e\n");
    script.push_str(&section("pre-data"));
    for table in &tables {
        let table = table.replace('\'', "'\\''");
        script.push_str(&format!(
            "{psql} -X -q -v ON_ERROR_STOP=1 --dbname=\"$FROM\" -c 'COPY {table} TO STDOUT' | {psql} -X -q -v ON_ERROR_STOP=1 --dbname=\"$TO\" -c 'COPY {table} FROM STDIN'\n",
            psql = psql.display()
        ));
    }
    script.push_str(&section("post-data"));
    time_script(sh, &script, source.url("postgres"), target.url(&db)).context("the raw COPY pipe failed")
}

/// A new, empty database of this name on the target's cluster.
fn fresh_database(target: &Throwaway, db: &str) -> Result<String> {
    let mut conn = target.guard()?.write::<op::LoadTesting>()?.connect()?;
    // One statement each: DROP and CREATE DATABASE refuse to run in a transaction block.
    conn.client().batch_execute(&format!("drop database if exists {db}"))?;
    conn.client().batch_execute(&format!("create database {db}"))?;
    Ok(db.to_string())
}

/// Runs a shell pipeline with `$FROM` and `$TO` set to the two URLs; its wall time.
/// Runs a shell pipeline of client programs between two throwaway clusters: the URLs go in
/// without their password (which the shell would put on argv), the password through
/// `PGPASSWORD`, and nothing else from libpq's environment.
fn time_script(sh: &Shell, script: &str, from: String, to: String) -> Result<Duration> {
    let hide = |url: String| url.replacen(&format!(":{}@", Throwaway::password()), "@", 1);
    let mut command = cmd!(sh, "sh -c {script}").env("FROM", hide(from)).env("TO", hide(to));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command = command.env_remove(key);
        }
    }
    let started = Instant::now();
    command.env("PGPASSWORD", Throwaway::password()).quiet().ignore_stderr().run()?;
    Ok(started.elapsed())
}

fn run_child(command: &mut Command) -> Result<String> {
    let out = command.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{}", stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or("a benchmark step failed"));
    }
    Ok(stderr)
}

fn parse_peak(stderr: &str) -> u64 {
    stderr.lines().find_map(|l| l.strip_prefix("peak-memory-kb: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Where the scratch root's rules come from.
enum Rules {
    /// The repository's `env/stage-sync.toml`.
    Project,
    /// `stage-sync init-rules` run against the source, then decided as a user would.
    InitRules,
}

/// A scratch project root whose production environment is the source cluster.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(repo: &Path, production_url: &str, rules: Rules) -> Result<Scratch> {
        let root = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let scratch = Scratch { root };
        std::fs::create_dir_all(scratch.root.join("env"))?;
        std::fs::copy(repo.join(app::Settings::PATH), scratch.root.join(app::Settings::PATH))?;
        let key = format!("bench-key-{}", Throwaway::password());
        std::fs::write(
            scratch.root.join("env/.env.production"),
            format!("DATABASE_URL={production_url}\nSTAGE_SYNC_KEY={key}\n"),
        )?;
        let rules_file = scratch.root.join("env/stage-sync.toml");
        match rules {
            Rules::Project => {
                std::fs::copy(repo.join("env/stage-sync.toml"), &rules_file)?;
            }
            Rules::InitRules => {
                run_child(
                    Command::new(context::xtask_exe()?)
                        .args(["--quiet", "stage-sync", "init-rules"])
                        .env(context::ROOT_VAR, &scratch.root)
                        .env_remove("DATABASE_URL")
                        .env_remove("APP_ENV"),
                )
                .context("stage-sync init-rules failed on the generated schema")?;
                let written = std::fs::read_to_string(&rules_file)?;
                std::fs::write(&rules_file, generated::decide(&written)?)?;
            }
        }
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
