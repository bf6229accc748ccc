//! `cargo xtask bench reset`: `db reset` from its template (a hit) and rebuilt (a miss,
//! the template dropped first) next to a raw `CREATE DATABASE ... TEMPLATE` of the same
//! template by `psql`, measured side by side in one run, each from process start to exit:
//! in a scratch copy of the project with its own local cluster (realistic seed). Then the
//! same clone on the `large` seed, on a throwaway cluster, through the guard's
//! `reset_from_template` in this process, next to the raw clone. Target: a hit within 3x
//! of the raw clone. Also `db undo` (and the redo after it) on the realistic seed, from
//! process start to exit: target under 1 s.

use std::{path::Path, process::Command, time::Instant};

use anyhow::{Context, Result, bail};
use app::guard::{TemplateReset, op};

use super::db_up::{median, scratch, scratch_project};
use crate::{
    context::{self, data, status},
    flags::Profile,
    pg::Binaries,
    throwaway::{Throwaway, throwaway_guard},
    ui::{self, Align},
};

const RUNS: usize = 5;
pub(crate) const TARGET_RATIO: f64 = 3.0;
/// `db undo` on the realistic seed, seconds.
pub(crate) const TARGET_UNDO: f64 = 1.0;
/// The key the `large` template is made with here (no `db reset` makes one).
const LARGE_KEY: &str = "bench-reset-large";

/// What `bench reset` measured (medians, seconds), for `cargo xtask bench`'s summary.
pub(crate) struct Figures {
    pub hit: f64,
    pub miss: f64,
    pub raw: f64,
    pub large_hit: f64,
    pub large_raw: f64,
    pub undo: f64,
}

pub(crate) fn run() -> Result<Figures> {
    let root = scratch("reset")?;
    let realistic = realistic(&root);
    let exe = context::xtask_exe()?;
    let _ = Command::new(&exe).args(["db", "destroy", "--yes", "-q"]).env(context::ROOT_VAR, &root).output();
    let _ = std::fs::remove_dir_all(&root);
    let (hit, miss, raw, undo) = realistic?;
    let (large_hit, large_raw) = large()?;
    let mut table = ui::Table::new(&[
        (&format!("db reset, median of {RUNS}"), Align::Left),
        ("seconds", Align::Right),
        ("x raw", Align::Right),
    ]);
    let rows = [
        ("raw CREATE DATABASE ... TEMPLATE (psql), realistic", raw, 1.0),
        ("`cargo xtask db reset`, template hit, realistic", hit, hit / raw),
        ("`cargo xtask db reset`, template miss (rebuild)", miss, miss / raw),
        ("`cargo xtask db undo` (and redo), realistic", undo, undo / raw),
        ("raw CREATE DATABASE ... TEMPLATE (psql), large", large_raw, 1.0),
        ("reset_from_template (guard, in process), large", large_hit, large_hit / large_raw),
    ];
    for (what, seconds, ratio) in rows {
        table.row([what.to_string(), format!("{seconds:.3}"), format!("{ratio:.2}")]);
    }
    table.lines().iter().try_for_each(data)?;
    let worst = (hit / raw).max(large_hit / large_raw);
    let verdict = if worst <= TARGET_RATIO { "met" } else { "MISSED" };
    data(format!("target: a template hit within {TARGET_RATIO:.0}x of a raw clone: {verdict} (worst {worst:.2}x)"))?;
    let verdict = if undo < TARGET_UNDO { "met" } else { "MISSED" };
    data(format!("target: `db undo` under {TARGET_UNDO:.0} s on the realistic seed: {verdict} ({undo:.3} s)"))?;
    Ok(Figures { hit, miss, raw, large_hit, large_raw, undo })
}

/// Hit, miss, raw clone and undo medians on the realistic seed, in the scratch project at
/// `root`.
fn realistic(root: &Path) -> Result<(f64, f64, f64, f64)> {
    let port = scratch_project(root)?;
    status("db up in a scratch project (makes the template)");
    xtask(root, &["db", "up"], "created")?;
    let (mut hits, mut misses, mut raws, mut undos) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        status(format!("run {run} of {RUNS}"));
        hits.push(xtask(root, &["db", "reset"], "(cloned from its template)")?);
        wait_for_drop(port, "postgres")?;
        undos.push(xtask(root, &["db", "undo"], "swapped back")?);
        undos.push(xtask(root, &["db", "undo"], "swapped back")?);
        raws.push(raw_clone(port, "postgres", "postgres_xtask_template")?);
        psql(port, "postgres", "drop database postgres_xtask_template")?;
        misses.push(xtask(root, &["db", "reset"], "(rebuilt)")?);
    }
    Ok((median(hits), median(misses), median(raws), median(undos)))
}

/// The large seed on a throwaway cluster, its template made by the guard; then hit and raw
/// clone medians.
fn large() -> Result<(f64, f64)> {
    status("the large seed on a throwaway cluster");
    let throwaway = Throwaway::start()?;
    let url = throwaway.url("postgres");
    {
        let guard = throwaway.guard()?;
        crate::migrate::up_all(&guard)?;
        crate::seed::seed(&guard, &crate::seed::Options::new(Profile::Large, None, None, 1)?, false)?;
    }
    throwaway_guard(&url)?.write::<op::Reset>()?.refresh_template(LARGE_KEY)?;
    let (mut hits, mut raws) = (Vec::new(), Vec::new());
    for run in 1..=RUNS {
        status(format!("large, run {run} of {RUNS}"));
        let started = Instant::now();
        let outcome = throwaway_guard(&url)?.write::<op::Reset>()?.reset_from_template(LARGE_KEY, true)?;
        hits.push(started.elapsed().as_secs_f64());
        if outcome != TemplateReset::Cloned {
            bail!("the large reset was not a template hit: {outcome:?}");
        }
        // What `db reset` leaves to a detached process, untimed here too.
        throwaway_guard(&url)?.write::<op::Reset>()?.drop_replaced()?;
        raws.push(raw_clone(throwaway.cluster.port, Throwaway::password(), "postgres_xtask_template")?);
    }
    Ok((median(hits), median(raws)))
}

/// `cargo xtask ARGS` in the scratch project, timed; its status must contain `expect`.
fn xtask(root: &Path, args: &[&str], expect: &str) -> Result<f64> {
    let started = Instant::now();
    let out = Command::new(context::xtask_exe()?)
        .args(args)
        .env(context::ROOT_VAR, root)
        .env_remove("DATABASE_URL")
        .env_remove("APP_ENV")
        .output()?;
    let took = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.contains(expect) {
        bail!("`xtask {}` in the scratch project did not say {expect:?}: {}", args.join(" "), stderr.trim());
    }
    Ok(took)
}

/// `psql -c "create database ... template ..."`, timed, then the copy dropped (untimed).
fn raw_clone(port: u16, password: &str, template: &str) -> Result<f64> {
    let started = Instant::now();
    psql(port, password, &format!("create database bench_raw_clone template {template}"))?;
    let took = started.elapsed().as_secs_f64();
    psql(port, password, "drop database bench_raw_clone")?;
    // The next measurement should not wait for this session to end.
    std::thread::sleep(std::time::Duration::from_millis(200));
    Ok(took)
}

/// Waits (untimed) until the detached drop of the database a clone replaced is done, so
/// that its checkpoint does not slow the next measurement.
fn wait_for_drop(port: u16, password: &str) -> Result<()> {
    for _ in 0..300 {
        let left = psql(port, password, "select count(*) from pg_database where datname like '%\\_xtask\\_old'")?;
        if left.trim() == "0" {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("the database a clone replaced was not dropped within 30 s")
}

fn psql(port: u16, password: &str, sql: &str) -> Result<String> {
    let program = Binaries::find()?.dir.join("psql");
    let port = port.to_string();
    let out = Command::new(&program)
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "template1",
        ])
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
