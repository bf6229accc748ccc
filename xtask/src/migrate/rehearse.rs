//! `cargo xtask migrate rehearse`: the pending migrations, applied statement by statement on
//! a throwaway cluster that holds a copy of the environment's data (read through the
//! read-only path, never written) or a seeded profile. Per statement: time, locks and how
//! long they are held, rewrites, rows affected, failures only data reveals. Then the downs
//! (schema back as it was? rows lost?) and the ups again. Thresholds make it exit 1 unless
//! the file acknowledges them (`-- migrate:ack long-lock: why`, `table-rewrite`,
//! `down-loses-data`).

mod data;
mod run;

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Result, bail};
use app::guard::{ClientArgs, WriteConnection, op};
use postgres::Client;
use serde::Serialize;
use xshell::Shell;

use super::{Migration, files::Script, schema};
use crate::{
    context::{self, data, status},
    flags::{self, Global, RehearseData},
    throwaway::Throwaway,
};
use run::StatementReport;

/// The whole rehearsal, as `--json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub source: String,
    pub migrations: Vec<String>,
    /// Row counts of the copy's tables before the rehearsal.
    pub tables: BTreeMap<String, i64>,
    pub ups: Vec<StatementReport>,
    pub downs: Vec<StatementReport>,
    pub reapply: Vec<StatementReport>,
    pub problems: Vec<Problem>,
    pub seconds: f64,
}

/// A threshold crossed or a failure: acknowledged ones are reported and do not fail the run.
#[derive(Debug, Serialize)]
pub(super) struct Problem {
    pub file: String,
    pub line: usize,
    pub rule: String,
    pub reason: String,
    pub acknowledged: bool,
}

impl flags::MigrateRehearse {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        let started = Instant::now();
        let sh = Shell::new()?;
        let files = super::load_files()?;
        let throwaway = Throwaway::start()?;
        let guard = throwaway.guard()?;
        let (source, pending, copy) = match self.data {
            RehearseData::Copy => {
                if self.from.is_some() {
                    bail!(
                        "--from is for seeded data\nhint: a copy rehearses the migrations pending on the environment"
                    );
                }
                let (source, pending, owner, reader) = data::copy(&sh, global, &throwaway, &files, self.pending_on)?;
                (source, pending, Some((owner, reader)))
            }
            _ if self.pending_on.is_some() => {
                bail!("--pending-on is for a copy\nhint: with seeded data, choose the migrations with --from")
            }
            profile => {
                let (source, pending) = data::seeded(&guard, &files, profile, self.from)?;
                (source, pending, None)
            }
        };
        if pending.is_empty() {
            status(format!("nothing to rehearse: no migration is pending on {source}"));
            return Ok(());
        }
        let labels: Vec<String> = pending.iter().map(|m| m.label()).collect();
        status(format!("rehearsing {} on {source}", labels.join(", ")));
        // On a copy, the migrations run as the copy's owner, never as the superuser.
        let (migrator, reader) = copy.as_ref().map_or((&guard, &guard), |(owner, reader)| (owner, reader));
        let mut report = rehearse(&sh, (migrator, reader), &pending, &self)?;
        report.source = source;
        report.migrations = labels;
        report.seconds = started.elapsed().as_secs_f64();
        if self.json {
            data(serde_json::to_string_pretty(&report)?)?;
        } else {
            print_table(&report)?;
        }
        let open: Vec<&Problem> = report.problems.iter().filter(|p| !p.acknowledged).collect();
        for p in &report.problems {
            let line = format!("{}:{}: {}: {}", p.file, p.line, p.rule, p.reason);
            if p.acknowledged { status(format!("{line} (acknowledged)")) } else { context::warn(line) }
        }
        status(format!("rehearsal took {:.1} s", report.seconds));
        if let Some(first) = open.first() {
            bail!(
                "the rehearsal found {} problem(s), the first {}:{}: {}\nhint: fix the migration, or, if it is safe, acknowledge it above the statement: `-- migrate:ack {}: why`",
                open.len(),
                first.file,
                first.line,
                first.rule,
                first.rule
            );
        }
        Ok(())
    }
}

/// Runs the migrations as `migrator`'s login; `reader`'s reads the schema, the row counts
/// and the locks.
fn rehearse(
    sh: &Shell,
    (migrator, reader): (&app::Guard, &app::Guard),
    pending: &[Migration],
    limits: &flags::MigrateRehearse,
) -> Result<Report> {
    let mut conn = migrator.write::<op::Migrate>()?.connect()?;
    let inspect = reader.write::<op::Migrate>()?;
    let args = inspect.client_args()?;
    let mut counter = inspect.connect()?;
    let monitor = Some(reader.read::<op::Inspect>()?.connect()?);
    let tables = run::row_counts(counter.client())?;
    let mut stage = Stage { sh, args, client: conn.client(), counter, monitor, pending };
    let before = stage.dump()?;
    let mut report = Report {
        source: String::new(),
        migrations: Vec::new(),
        tables,
        ups: Vec::new(),
        downs: Vec::new(),
        reapply: Vec::new(),
        problems: Vec::new(),
        seconds: 0.0,
    };
    report.ups = stage.apply_ups()?;
    // The Supabase layout has no down files: only the ups can be rehearsed.
    let downs: Option<Vec<&Script>> = pending.iter().rev().map(|m| m.down.as_ref()).collect();
    if downs.is_none() {
        status("the pending migrations have no down files: rollback is not rehearsed");
    }
    if let (false, Some(downs)) = (failed(&report.ups), downs) {
        stage.round_trip(&mut report, &before, &downs)?;
    }
    let problems = judge(&report, limits);
    report.problems.splice(0..0, problems);
    Ok(report)
}

/// Whether a file's run stopped at a failing statement.
fn failed(reports: &[StatementReport]) -> bool {
    reports.last().is_some_and(|r| r.error.is_some())
}

/// The sessions a rehearsal runs through: the migrating one, the one that counts rows, the
/// one that watches locks; and the pending migrations.
struct Stage<'a> {
    sh: &'a Shell,
    /// The reader's client programs, for schema dumps.
    args: ClientArgs,
    client: &'a mut Client,
    counter: WriteConnection<op::Migrate>,
    monitor: Option<run::Monitor>,
    pending: &'a [Migration],
}

impl Stage<'_> {
    fn dump(&self) -> Result<String> {
        schema::dump(self.sh, &self.args, "the rehearsal copy")
    }

    /// Every pending up, in order, until one fails.
    fn apply_ups(&mut self) -> Result<Vec<StatementReport>> {
        let mut reports = Vec::new();
        for m in self.pending {
            reports.extend(run::apply(self.client, &mut self.monitor, &m.up, false)?);
            if failed(&reports) {
                break;
            }
        }
        Ok(reports)
    }

    /// The downs, then the schema and rows they leave against `before`, then the ups again
    /// against the schema they made the first time.
    fn round_trip(&mut self, report: &mut Report, before: &str, downs: &[&Script]) -> Result<()> {
        let after = self.dump()?;
        for down in downs {
            report.downs.extend(run::apply(self.client, &mut self.monitor, down, true)?);
            if failed(&report.downs) {
                return Ok(());
            }
        }
        self.check_restored(report, before)?;
        report.reapply = self.apply_ups()?;
        if failed(&report.reapply) {
            return Ok(());
        }
        if let Some(difference) = schema::first_difference(&after, &self.dump()?) {
            let file = self.pending.last().map(|m| m.up.file.clone()).unwrap_or_default();
            report.problems.push(problem(
                &file,
                1,
                "reapply-differs",
                format!("the ups applied again give another schema: {difference}"),
                false,
            ));
        }
        Ok(())
    }

    /// After the downs: the schema as it was `before`, and no table with fewer rows.
    fn check_restored(&mut self, report: &mut Report, before: &str) -> Result<()> {
        let file = self.pending.first().and_then(|m| m.down.as_ref()).map(|d| d.file.clone()).unwrap_or_default();
        let restored = self.dump()?;
        if let Some(difference) = schema::first_difference(before, &restored) {
            report.problems.push(problem(
                &file,
                1,
                "down-restores-schema",
                format!("the downs do not restore the schema: {difference}"),
                false,
            ));
        }
        let counts = run::row_counts(self.counter.client())?;
        let acked = report.downs.iter().any(|r| r.acks.iter().any(|a| a == "down-loses-data"));
        for (table, rows) in &report.tables {
            let now = counts.get(table).copied().unwrap_or(0);
            if now < *rows {
                report.problems.push(problem(
                    &file,
                    1,
                    "down-loses-data",
                    format!("after the downs {table} has {now} rows, it had {rows}"),
                    acked,
                ));
            }
        }
        Ok(())
    }
}

/// Failures, and the thresholds each statement crossed.
fn judge(report: &Report, limits: &flags::MigrateRehearse) -> Vec<Problem> {
    let rows = |table: &str| report.tables.get(table).copied().unwrap_or(0);
    let mut problems = Vec::new();
    let phases = [("up", &report.ups), ("down", &report.downs), ("up again", &report.reapply)];
    for (phase, reports) in phases {
        for r in reports {
            let acked = |rule: &str| r.acks.iter().any(|a| a == rule);
            if let Some(error) = &r.error {
                problems.push(problem(&r.file, r.line, "failed", format!("{phase}: {error}"), false));
            }
            for lock in &r.locks {
                let blocking = lock.blocks == "writes" || lock.blocks == "reads and writes";
                if blocking && rows(&lock.table) > limits.max_rows && lock.held_ms > limits.max_lock_ms as f64 {
                    let reason = format!(
                        "{phase}: {} on {} ({} rows) blocks {} for {:.0} ms (limit {} ms)",
                        lock.mode,
                        lock.table,
                        rows(&lock.table),
                        lock.blocks,
                        lock.held_ms,
                        limits.max_lock_ms
                    );
                    problems.push(problem(&r.file, r.line, "long-lock", reason, acked("long-lock")));
                }
            }
            for table in &r.rewrites {
                if rows(table) > limits.max_rows {
                    let reason = format!("{phase}: rewrites {table} ({} rows, limit {})", rows(table), limits.max_rows);
                    problems.push(problem(&r.file, r.line, "table-rewrite", reason, acked("table-rewrite")));
                }
            }
            for (what, n) in &r.destroys {
                problems.push(problem(
                    &r.file,
                    r.line,
                    "down-loses-data",
                    format!("{phase}: destroys {n} {what}"),
                    acked("down-loses-data"),
                ));
            }
        }
    }
    problems
}

fn problem(file: &str, line: usize, rule: &str, reason: String, acknowledged: bool) -> Problem {
    Problem { file: file.to_string(), line, rule: rule.to_string(), reason, acknowledged }
}

/// One line per statement: where, time, the strongest lock and its table, rewrites, rows.
fn print_table(report: &Report) -> Result<()> {
    data(format!(
        "{:<10} {:<44} {:<40} {:>9} {:>9} {:<8} {:>8}",
        "phase", "file:line", "statement", "ms", "held ms", "rewrite", "rows"
    ))?;
    let phases = [("up", &report.ups), ("down", &report.downs), ("up again", &report.reapply)];
    for (phase, reports) in phases {
        for r in reports {
            let at = format!("{}:{}", r.file, r.line);
            let rewrite = if r.rewrites.is_empty() { "no" } else { "YES" };
            let held = r.locks.iter().map(|l| l.held_ms).fold(0.0, f64::max);
            data(format!(
                "{phase:<10} {at:<44} {:<40} {:>9.1} {held:>9.1} {rewrite:<8} {:>8}",
                r.statement, r.ms, r.rows_affected
            ))?;
            for lock in r.locks.iter().filter(|l| l.blocks != "none") {
                let rows = report.tables.get(&lock.table).copied().unwrap_or(0);
                data(format!(
                    "{:<10}   lock {} on {} ({rows} rows): blocks {}",
                    "", lock.mode, lock.table, lock.blocks
                ))?;
            }
            for table in &r.rewrites {
                data(format!("{:<10}   rewrites {table}", ""))?;
            }
            for (what, n) in &r.destroys {
                data(format!("{:<10}   destroys {n} {what}", ""))?;
            }
            if let Some(error) = &r.error {
                data(format!("{:<10}   FAILED: {error}", ""))?;
            }
        }
    }
    Ok(())
}
