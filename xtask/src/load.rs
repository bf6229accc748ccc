//! `cargo xtask load`: load-tests the dashboard's real queries (`env/load.toml`) under
//! row-level security, as Supabase's API runs them, against the guarded, stamp-checked target.
//!
//! The access matrix's row: never production (the guard refuses before any connection); on
//! staging, which others may be using, a confirmation naming the project (or `--yes`); on
//! local, "limited": at most [`LOCAL_MAX_CLIENTS`] clients for [`LOCAL_MAX_SECONDS`] seconds,
//! which the flags cannot exceed. Every transaction is rolled back, so the data is left as
//! it was found. `load/workload.rs` reads the file, `load/params.rs` draws parameters from
//! the target's data, `load/run.rs` is the load generator, `load/report.rs` the report.

mod params;
mod report;
mod run;
mod workload;

use std::{io::IsTerminal, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use app::{Environment, Guard, guard::op};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    context::{self, status},
    flags::{self, Global},
};

/// The caps where the matrix says load testing is limited (local): the developer's own
/// cluster shares the machine with everything else.
pub const LOCAL_MAX_CLIENTS: u32 = 4;
pub const LOCAL_MAX_SECONDS: u64 = 30;

/// Without `--duration` or `--transactions`.
const DEFAULT_SECONDS: u64 = 10;

impl flags::Load {
    pub fn run(self, global: &Global) -> Result<()> {
        if self.clients == 0 || self.clients > 256 {
            bail!("--clients must be between 1 and 256, not {}", self.clients);
        }
        if self.duration == Some(0) || self.transactions == Some(0) {
            bail!("--duration and --transactions must be at least 1");
        }
        let guard = context::guard(global)?;
        let target = guard.write::<op::LoadTesting>()?;
        let root = context::project_root();
        let path = if self.workload.is_absolute() { self.workload.clone() } else { root.join(&self.workload) };
        let workload = Arc::new(workload::load(&path, &self.workload.display().to_string())?);

        let (mut clients, mut seconds) = (self.clients, self.duration.unwrap_or(DEFAULT_SECONDS));
        if self.transactions.is_some() && self.duration.is_none() {
            // Bounded by transactions; the time bound is only a safety net.
            seconds = 3600;
        }
        let caps = target.is_limited().then_some((LOCAL_MAX_CLIENTS, LOCAL_MAX_SECONDS));
        if let Some((max_clients, max_seconds)) = caps {
            status(format!(
                "load testing is limited on {}: at most {max_clients} clients and {max_seconds} s",
                target.environment()
            ));
            if clients > max_clients {
                context::warn(format!(
                    "--clients {clients} exceeds the limit on {}: using {max_clients}",
                    target.environment()
                ));
                clients = max_clients;
            }
            if seconds > max_seconds {
                if self.duration.is_some() {
                    context::warn(format!(
                        "--duration {seconds} exceeds the limit on {}: using {max_seconds}",
                        target.environment()
                    ));
                }
                seconds = max_seconds;
            }
        }
        if target.environment() == Environment::Staging {
            confirm(&guard, &target.url().address(), self.yes)?;
        }

        let mut connections = Vec::with_capacity(clients as usize);
        for _ in 0..clients {
            connections.push(target.connect()?);
        }
        let data = Arc::new(params::Data::read(connections[0].client())?);
        if let Some(query) = workload.queries.iter().find(|q| !data.has_member_for(q)) {
            bail!(
                "no active member of the target holds one of the roles query {} asks for ({})",
                query.name,
                query.members.join(", ")
            );
        }
        let bound = match self.transactions {
            Some(n) => format!("{n} transactions (at most {seconds} s)"),
            None => format!("{seconds} s"),
        };
        status(format!(
            "load test on {} ({}): {clients} client(s), {bound}; {} queries from {}; parameters from {} members in {} clinics; every transaction rolled back",
            target.environment(),
            target.url().address(),
            workload.queries.len(),
            self.workload.display(),
            data.members(),
            data.clinics(),
        ));

        let bounds = run::Bounds { transactions: self.transactions, deadline: Duration::from_secs(seconds) };
        let counters = Arc::new(run::Counters::default());
        let progress = progress_line();
        let (stats, elapsed) = run::run(connections, &workload, &data, bounds, self.seed, &counters, |c, at| {
            let done = c.done.load(std::sync::atomic::Ordering::Relaxed);
            let errors = c.errors.load(std::sync::atomic::Ordering::Relaxed);
            progress.set_message(format!(
                "{:>6.1} s  {done:>8} transactions  {:>8.0} tx/s  {errors} errors",
                at.as_secs_f64(),
                done as f64 / at.as_secs_f64().max(1e-3)
            ));
        })?;
        progress.finish_and_clear();

        let (variants, _) = run::schedule(&workload);
        let setup = report::Setup { environment: target.environment().to_string(), clients, caps };
        report::print(&setup, &workload, &variants, &stats, elapsed, self.json);
        for (variant, stats) in variants.iter().zip(&stats) {
            let query = &workload.queries[variant.query];
            if stats.latency.len() > 0 && stats.empty == stats.latency.len() {
                context::warn(format!(
                    "{} as {} returned no rows in every transaction: RLS denies it, or its parameters find no data",
                    query.name,
                    variant.role.name()
                ));
            }
        }
        let errors: u64 = stats.iter().map(run::Stats::errors).sum();
        if errors > 0 {
            bail!("{errors} transaction(s) failed (see errors by kind above)");
        }
        Ok(())
    }
}

/// Staging is shared: the user confirms the project by name, or passes `--yes`.
fn confirm(guard: &Guard, address: &str, yes: bool) -> Result<()> {
    let project_ref = guard.resolved().project_ref.clone().unwrap_or_else(|| "(unknown ref)".to_string());
    let name = guard.all_settings().project(&project_ref).map(|p| p.name.clone()).unwrap_or_default();
    if yes {
        status(format!("load testing staging project {project_ref} {name}: confirmed by --yes"));
        return Ok(());
    }
    if !context::stdin_is_terminal() {
        bail!(
            "load testing staging project {project_ref} ({address}) needs a confirmation, and stdin is not a terminal\nhint: others may be using staging; pass --yes to confirm"
        );
    }
    eprint!("Load-test staging project {project_ref} {name} at {address}? Others may be using it. [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the confirmation")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not confirmed: nothing was run");
    }
    Ok(())
}

/// One line on a terminal, redrawn; hidden on a pipe or when quiet.
fn progress_line() -> ProgressBar {
    let visible = std::io::stderr().is_terminal() && !context::is_quiet();
    let bar = ProgressBar::with_draw_target(
        None,
        if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    bar
}

/// A server error's own message (with detail), never just "db error".
fn db_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => format!("{err:#}"),
    }
}
