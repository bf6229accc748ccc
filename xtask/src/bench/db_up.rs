//! `cargo xtask bench db-up`: how long `db up` takes from nothing (no cluster folder), in a
//! scratch copy of the project on a free port, next to a bare `initdb` and start of the same
//! server measured in the same run: the difference is what the Supabase bootstrap, the
//! migrations and the seed cost. The target is at most 3 s for the seeded `db up`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::{
    context::{self, data, status},
    migrate::layout,
    pg::{self, Binaries, Cluster, Durability},
};

/// The target for `db up` from nothing.
pub(crate) const TARGET_SECONDS: f64 = 3.0;
/// Runs of each kind; the median is reported.
const RUNS: usize = 3;

/// What `bench db-up` measured (medians, seconds), for `cargo xtask bench`'s summary.
pub(crate) struct Figures {
    pub seeded: f64,
}

pub(crate) fn run() -> Result<Figures> {
    let sh = Shell::new()?;
    let bins = Binaries::find()?;
    let mut bare = Vec::new();
    let (mut unseeded, mut seeded) = (Vec::new(), Vec::new());
    for run in 1..=RUNS {
        status(format!("run {run} of {RUNS}"));
        bare.push(bare_cluster(&sh, &bins)?);
        unseeded.push(db_up(&["--no-seed"])?);
        seeded.push(db_up(&[])?);
    }
    let (bare, unseeded, seeded) = (median(bare), median(unseeded), median(seeded));
    data(format!("{:<44} {:>8}", format!("db up from nothing, median of {RUNS}"), "seconds"))?;
    data(format!("{:<44} {bare:>8.2}", "initdb + start, nothing else"))?;
    data(format!("{:<44} {unseeded:>8.2}", "db up --no-seed (+ bootstrap, migrations)"))?;
    data(format!("{:<44} {seeded:>8.2}", "db up (+ realistic seed)"))?;
    data(format!("{:<44} {:>8.2}", "bootstrap and migrations over bare", unseeded - bare))?;
    let verdict = if seeded <= TARGET_SECONDS { "met" } else { "MISSED" };
    data(format!("target: db up within {TARGET_SECONDS:.1} s: {verdict} ({seeded:.2} s)"))?;
    Ok(Figures { seeded })
}

pub(super) fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `initdb` and start of a cluster with the same settings `db up` uses, then removed.
fn bare_cluster(sh: &Shell, bins: &Binaries) -> Result<f64> {
    let dir = scratch("bare")?;
    let cluster = Cluster::new(&dir, pg::free_port()?, bins.clone());
    let started = Instant::now();
    let result = cluster.init(sh, "postgres", Durability::Safe).and_then(|()| cluster.start(sh));
    let took = started.elapsed().as_secs_f64();
    if result.is_ok() {
        let _ = cluster.stop(sh, true);
    }
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| took)
}

/// The real binary's `db up` in a scratch copy of the project (settings and migrations),
/// timed from the command's start to its exit; the cluster is destroyed after.
fn db_up(args: &[&str]) -> Result<f64> {
    let root = scratch("project")?;
    let result = scratch_project(&root).and_then(|_| {
        let exe = context::xtask_exe()?;
        let started = Instant::now();
        let out = Command::new(&exe)
            .args(["db", "up", "-q"])
            .args(args)
            .env(context::ROOT_VAR, &root)
            .env_remove("DATABASE_URL")
            .env_remove("APP_ENV")
            .output()?;
        let took = started.elapsed().as_secs_f64();
        let _ = Command::new(&exe).args(["db", "destroy", "--yes", "-q"]).env(context::ROOT_VAR, &root).output();
        if !out.status.success() {
            bail!("db up failed in the scratch project: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(took)
    });
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// The project's settings on a free port (returned), a local env file for it, and its
/// migrations.
pub(super) fn scratch_project(root: &Path) -> Result<u16> {
    let source = context::project_root();
    let port = pg::free_port()?;
    let settings = std::fs::read_to_string(source.join(app::Settings::PATH))?;
    let local_port = app::Settings::parse(&settings)?.local.port;
    let settings = settings.replace(&format!("port = {local_port}"), &format!("port = {port}"));
    std::fs::create_dir_all(root.join("env"))?;
    std::fs::write(root.join(app::Settings::PATH), settings)?;
    std::fs::write(
        root.join("env/.env.local"),
        format!(
            "DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:{port}/postgres\nNEXT_PUBLIC_SUPABASE_URL=http://127.0.0.1:54321\n"
        ),
    )?;
    let folder = layout::folder()?;
    let target = root.join(&folder.shown);
    std::fs::create_dir_all(&target)?;
    for entry in std::fs::read_dir(&folder.dir).with_context(|| format!("cannot read {}", folder.shown))? {
        let entry = entry?;
        std::fs::copy(entry.path(), target.join(entry.file_name()))?;
    }
    Ok(port)
}

pub(super) fn scratch(kind: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join("xtask-bench-db-up").join(format!("{}-{kind}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
