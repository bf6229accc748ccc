//! `cargo xtask bench stage-sync`: on two throwaway clusters, the source seeded with the
//! `large` profile, time `stage-sync` with the project's rules next to `pg_dump -Fc |
//! pg_restore`, `pg_dump -Fd -j2` + `pg_restore -j2` and a raw unmasked COPY pipe of the same
//! data into fresh databases, side by side in one run.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use app::guard::op;
use xshell::{Shell, cmd};

use crate::{context, migrate, pg::Throwaway};

/// Runs the benchmark and prints its figures on stdout: each tool's best of two rounds, run
/// in turns so that they share the machine's state alike.
pub(crate) fn run(sh: &Shell, clinics: Option<u64>) -> Result<()> {
    let pair = Pair::new("large", clinics)?;
    let (mut sync, mut dump, mut dump_j2, mut raw) = (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    let mut peak_kb = 0;
    for round in 0..2 {
        dump = dump.min(dump_restore(sh, &pair.source, &pair.target, round)?);
        dump_j2 = dump_j2.min(dump_restore_parallel(sh, &pair.source, &pair.target, round)?);
        raw = raw.min(raw_pipe(sh, &pair.source, &pair.target, round)?);
        let (took, peak) = pair.sync()?;
        sync = sync.min(took);
        peak_kb = peak_kb.max(peak);
    }
    let rows = pair.rows as f64;
    context::data(format!("rows in the source: {}", pair.rows))?;
    context::data(format!("{:<56} {:>8} {:>10} {:>13}", "tool", "seconds", "rows/s", "x stage-sync"))?;
    for (tool, took) in [
        ("stage-sync (masked, verified)", sync),
        ("raw COPY pipe (no masking, one stream, indexes rebuilt)", raw),
        ("pg_dump -Fd -j2 + pg_restore -j2", dump_j2),
        ("pg_dump -Fc | pg_restore", dump),
    ] {
        let secs = took.as_secs_f64();
        context::data(format!("{tool:<56} {secs:>8.2} {:>10.0} {:>13.2}", rows / secs, secs / sync.as_secs_f64()))?;
    }
    let ratio = |other: Duration| sync.as_secs_f64() / other.as_secs_f64();
    context::data(format!(
        "ratio stage-sync / pg_dump -Fd -j2 + pg_restore -j2: {:.2} (target <= 0.75)",
        ratio(dump_j2)
    ))?;
    context::data(format!("ratio stage-sync / raw COPY pipe: {:.2} (target <= 1.0)", ratio(raw)))?;
    context::data(format!("ratio stage-sync / pg_dump -Fc | pg_restore: {:.2}", ratio(dump)))?;
    context::data(format!("stage-sync peak memory: {:.0} MB (target <= 150 MB)", peak_kb as f64 / 1024.0))?;
    Ok(())
}

/// `cargo xtask ci`'s section: a seeded source synced into a target with the project's
/// rules, verified (leak check included) before it commits.
pub(crate) fn end_to_end() -> Result<()> {
    let pair = Pair::new("minimal", None)?;
    let (took, _) = pair.sync()?;
    context::status(format!("stage-sync end to end: {} rows, verified, in {:.1} s", pair.rows, took.as_secs_f64()));
    Ok(())
}

/// A seeded source, known as production through a login that names the production project
/// (as Supabase's pooler logins do), and a migrated test target.
struct Pair {
    source: Throwaway,
    target: Throwaway,
    scratch: Scratch,
    rows: i64,
}

impl Pair {
    fn new(profile: &str, clinics: Option<u64>) -> Result<Pair> {
        let root = context::project_root();
        let source = Throwaway::start()?;
        let target = Throwaway::start()?;
        for cluster in [&source, &target] {
            migrate::up_all(&cluster.guard()?)?;
        }
        let mut seed = Command::new(context::xtask_exe()?);
        seed.args(["--quiet", "seed", "--env", "test", "--profile", profile]);
        if let Some(clinics) = clinics {
            seed.args(["--clinics", &clinics.to_string()]);
        }
        run_child(seed.env("DATABASE_URL", source.url("postgres")))?;
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
        let scratch = Scratch::new(&root, &source.url("postgres").replacen("postgres:", &format!("{role}:"), 1))?;
        Ok(Pair { source, target, scratch, rows })
    }

    /// One stage-sync run, as its own process: its wall time and peak memory (kB).
    fn sync(&self) -> Result<(Duration, u64)> {
        let started = Instant::now();
        let out = run_child(
            Command::new(context::xtask_exe()?)
                .args(["--quiet", "stage-sync", "--from", "production", "--to", "test", "--yes"])
                .env(context::ROOT_VAR, &self.scratch.root)
                .env("DATABASE_URL", self.target.url("postgres"))
                .env(crate::PEAK_MEMORY_VAR, "1"),
        )?;
        Ok((started.elapsed(), parse_peak(&out)))
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

/// A scratch project root whose production environment is the source cluster.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(repo: &Path, production_url: &str) -> Result<Scratch> {
        let root = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(root.join("env"))?;
        for file in ["environments.toml", "stage-sync.toml"] {
            std::fs::copy(repo.join("env").join(file), root.join("env").join(file))?;
        }
        let key = format!("bench-key-{}", Throwaway::password());
        std::fs::write(
            root.join("env/.env.production"),
            format!("DATABASE_URL={production_url}\nSTAGE_SYNC_KEY={key}\n"),
        )?;
        Ok(Scratch { root })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
