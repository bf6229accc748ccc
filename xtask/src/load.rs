//! `cargo xtask load`: load-tests the dashboard's real queries (`env/load.toml`) under
//! row-level security, as Supabase's API runs them, against the guarded, stamp-checked target.
//!
//! The access matrix's row: never production (the guard refuses before any connection); on
//! staging, which others may be using, a confirmation naming the project (or `--yes`); on
//! local, "limited": at most [`LOCAL_MAX_CLIENTS`] clients for [`LOCAL_MAX_SECONDS`] seconds,
//! which the flags cannot exceed. Every transaction is rolled back, so the data is left as
//! it was found. `load/workload.rs` reads the file, `load/params.rs` draws parameters from
//! the target's data, `load/run.rs` is the load generator, `load/report.rs` the report.

mod effects;
mod params;
mod report;
mod run;
mod workload;

use std::{sync::Arc, time::Duration};

use anyhow::{Result, bail};
use app::{
    Environment, Guard,
    guard::{WriteConnection, WriteTarget, op},
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    context::{self, status},
    flags::{self, Global},
    ui,
};
use workload::Workload;

/// The caps where the matrix says load testing is limited (local): the developer's own
/// cluster shares the machine with everything else.
pub(crate) const LOCAL_MAX_CLIENTS: u32 = 4;
pub(crate) const LOCAL_MAX_SECONDS: u64 = 30;

/// Without `--duration` or `--transactions`.
const DEFAULT_SECONDS: u64 = 10;

impl flags::Load {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        self.check()?;
        let guard = context::guard(global)?;
        let target = guard.write::<op::LoadTesting>()?;
        let root = context::project_root();
        let path = if self.workload.is_absolute() { self.workload.clone() } else { root.join(&self.workload) };
        let workload = Arc::new(workload::load(&path, &self.shown())?);
        let caps = target.is_limited().then_some((LOCAL_MAX_CLIENTS, LOCAL_MAX_SECONDS));
        let (clients, seconds) = self.within(&target, caps);
        if target.environment() == Environment::Staging {
            confirm(&guard, &target.url().address(), self.yes)?;
        }

        let mut connections = Vec::with_capacity(clients as usize);
        for _ in 0..clients {
            connections.push(target.connect()?);
        }
        let data = Arc::new(params::Data::read(connections[0].client())?);
        run::refuse_volatile(connections[0].client(), &workload, &self.shown())?;
        let sequences = run::sequences(connections[0].client())?;
        require_members(&workload, &data)?;
        self.announce(&target, &workload, &data, clients, seconds)?;

        let (stats, elapsed) = self.measure(connections, &workload, &data, seconds)?;
        let (variants, _) = run::schedule(&workload);
        let setup = report::Setup { environment: target.environment().to_string(), clients, caps };
        let measured = report::Measured { workload: &workload, variants: &variants, stats: &stats, elapsed };
        report::print(&setup, &measured, self.json)?;
        warn_empty(&measured);
        let moved = run::moved(&sequences, &run::sequences(target.connect()?.client())?);
        if !moved.is_empty() {
            bail!(
                "the run moved {} sequence(s), which a rollback does not undo: {}\nhint: the database moved them for the workload: column defaults (serial, identity) or triggers of the rows it inserts, or a function it calls; load-test such queries on a throwaway database",
                moved.len(),
                moved.join(", ")
            );
        }
        let errors: u64 = stats.iter().map(run::Stats::errors).sum();
        if errors > 0 {
            bail!("{errors} transaction(s) failed (see errors by kind above)");
        }
        Ok(())
    }

    /// The flags' own bounds, before anything is read or connected.
    fn check(&self) -> Result<()> {
        if self.clients == 0 || self.clients > 256 {
            bail!("--clients must be between 1 and 256, not {}", self.clients);
        }
        if self.duration == Some(0) || self.transactions == Some(0) {
            bail!("--duration and --transactions must be at least 1");
        }
        Ok(())
    }

    /// The workload file as the user named it, for messages.
    fn shown(&self) -> String {
        self.workload.display().to_string()
    }

    /// The run's clients and seconds within the target's caps, saying so when they apply
    /// and warning for each flag they cut.
    fn within(&self, target: &WriteTarget<op::LoadTesting>, caps: Option<(u32, u64)>) -> (u32, u64) {
        if let Some((max_clients, max_seconds)) = caps {
            status(format!(
                "load testing is limited on {}: at most {max_clients} clients and {max_seconds} s",
                target.environment()
            ));
        }
        let (clients, seconds, cut) = limits(self.clients, self.duration, self.transactions, caps);
        for flag in cut {
            context::warn(format!("{flag} exceeds the limit on {}", target.environment()));
        }
        (clients, seconds)
    }

    /// The status line saying what is about to run, against what.
    fn announce(
        &self,
        target: &WriteTarget<op::LoadTesting>,
        workload: &Workload,
        data: &params::Data,
        clients: u32,
        seconds: u64,
    ) -> Result<()> {
        let bound = match self.transactions {
            Some(n) => format!("{n} transactions (at most {seconds} s)"),
            None => format!("{seconds} s"),
        };
        status(format!(
            "load test on {} ({}): {clients} client(s), {bound}; {} quer{} from {}; parameters from {} members in {} clinics; every transaction rolled back",
            target.environment(),
            target.url().address(),
            workload.queries.len(),
            if workload.queries.len() == 1 { "y" } else { "ies" },
            self.workload.display(),
            data.members(),
            data.clinics(),
        ));
        Ok(())
    }

    /// Runs the clients with a progress line; each variant's stats and the elapsed time.
    fn measure(
        &self,
        connections: Vec<WriteConnection<op::LoadTesting>>,
        workload: &Arc<Workload>,
        data: &Arc<params::Data>,
        seconds: u64,
    ) -> Result<(Vec<run::Stats>, Duration)> {
        let shared = run::Shared {
            workload: workload.clone(),
            data: data.clone(),
            bounds: run::Bounds { transactions: self.transactions, deadline: Duration::from_secs(seconds) },
            seed: self.seed,
            counters: Arc::new(run::Counters::default()),
        };
        let progress = progress_line();
        let measured = run::run(connections, &shared, |c, at| {
            let done = c.done.load(std::sync::atomic::Ordering::Relaxed);
            let errors = c.errors.load(std::sync::atomic::Ordering::Relaxed);
            progress.set_message(format!(
                "{:>6.1} s  {done:>8} transactions  {:>8.0} tx/s  {errors} errors",
                at.as_secs_f64(),
                done as f64 / at.as_secs_f64().max(1e-3)
            ));
        })?;
        progress.finish_and_clear();
        Ok(measured)
    }
}

/// Refuses a workload one of whose queries no active member of the target can run.
fn require_members(workload: &Workload, data: &params::Data) -> Result<()> {
    if let Some(query) = workload.queries.iter().find(|q| !data.has_member_for(q)) {
        bail!(
            "no active member of the target holds one of the roles query {} asks for ({})",
            query.name,
            query.members.join(", ")
        );
    }
    Ok(())
}

/// Warns of every variant whose transactions all returned nothing.
fn warn_empty(measured: &report::Measured) {
    for (variant, stats) in measured.variants.iter().zip(measured.stats) {
        let query = &measured.workload.queries[variant.query];
        if !stats.latency.is_empty() && stats.empty == stats.latency.len() {
            context::warn(format!(
                "{} as {} returned no rows in every transaction: RLS denies it, or its parameters find no data",
                query.name,
                variant.role.name()
            ));
        }
    }
}

/// The run's clients and seconds within the caps (where the matrix says limited), and the
/// flags that asked for more. Bounded by transactions, time is only a safety net.
fn limits(
    clients: u32,
    duration: Option<u64>,
    transactions: Option<u64>,
    caps: Option<(u32, u64)>,
) -> (u32, u64, Vec<String>) {
    let asked_seconds = match (duration, transactions) {
        (Some(seconds), _) => seconds,
        (None, Some(_)) => 3600,
        (None, None) => DEFAULT_SECONDS,
    };
    let Some((max_clients, max_seconds)) = caps else { return (clients, asked_seconds, Vec::new()) };
    let mut cut = Vec::new();
    if clients > max_clients {
        cut.push(format!("--clients {clients}: using {max_clients}"));
    }
    if let Some(seconds) = duration.filter(|&s| s > max_seconds) {
        cut.push(format!("--duration {seconds}: using {max_seconds}"));
    }
    (clients.min(max_clients), asked_seconds.min(max_seconds), cut)
}

/// Staging is shared: the user confirms the project by name, or passes `--yes`.
fn confirm(guard: &Guard, address: &str, yes: bool) -> Result<()> {
    let resolved_ref = guard.resolved().project_ref.clone().unwrap_or_default();
    // The registry's spelling and name: what the team knows the project by.
    let project = match guard.all_settings().project(&resolved_ref) {
        Some(p) => format!("{} \"{}\"", p.project_ref, p.name),
        None => resolved_ref,
    };
    if yes {
        status(format!("load testing staging project {project}: confirmed by --yes"));
        return Ok(());
    }
    ui::printer().confirm(
        &format!("Load-test staging project {project} at {address}? Others may be using it."),
        &format!(
            "load testing staging project {project} ({address}) needs a confirmation, and stdin is not a terminal\nhint: others may be using staging; pass --yes to confirm"
        ),
        "not confirmed: nothing was run",
    )
}

/// One line on a terminal, redrawn; hidden on a pipe or when quiet.
fn progress_line() -> ProgressBar {
    let bar = ui::printer().progress_line();
    bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_cannot_exceed_the_caps() {
        let caps = Some((LOCAL_MAX_CLIENTS, LOCAL_MAX_SECONDS));
        assert_eq!(limits(16, Some(600), None, caps).0, LOCAL_MAX_CLIENTS);
        assert_eq!(limits(16, Some(600), None, caps).1, LOCAL_MAX_SECONDS);
        assert_eq!(limits(16, Some(600), None, caps).2.len(), 2);
        assert_eq!(limits(2, None, Some(100), caps), (2, LOCAL_MAX_SECONDS, Vec::new()));
        assert_eq!(limits(2, Some(5), None, caps), (2, 5, Vec::new()));
        assert_eq!(limits(16, None, None, None), (16, DEFAULT_SECONDS, Vec::new()));
        assert_eq!(limits(16, None, Some(10), None).1, 3600);
    }
}
