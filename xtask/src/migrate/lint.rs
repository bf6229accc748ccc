//! `cargo xtask migrate lint [FILES] [--all]`: locking and compatibility rules from Squawk
//! (`squawk-linter`, on its PostgreSQL parser), this project's rules on top
//! (`lint/rules.rs`), per-statement acknowledgements (`-- migrate:ack RULE: why`), and a
//! committed baseline for files applied before the linter existed (`lint/baseline.rs`).
//! Output reads like a compiler's: `file:line: rule: reason`, then a hint.

mod baseline;
mod exposure;
#[cfg(test)]
mod exposure_tests;
mod idents;
mod rules;
pub(crate) mod script;
mod tracking;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use squawk_linter::{Linter, Rule};

use super::{files, files::Migration};
use crate::{
    context::{data, status},
    flags,
};
pub(crate) use baseline::BASELINE_FILE;
pub(crate) use idents::qualified;
use script::Script;

/// Rules `migrate rehearse` enforces; their acknowledgements live in the same comments.
pub(crate) const REHEARSE_RULES: &[&str] = &["long-lock", "table-rewrite", "down-loses-data"];

/// Squawk rules left out, and why: style rather than safety here, or covered by one of our
/// rules with a message that names this project's mechanisms.
const SQUAWK_EXCLUDED: &[Rule] = &[
    // A file runs once, inside a transaction with its ledger row: `if not exists` would
    // only hide drift.
    Rule::PreferRobustStmts,
    // Keys are uuids; small integer columns are a modelling choice, not a locking hazard.
    Rule::PreferBigintOverInt,
    Rule::PreferBigintOverSmallint,
    Rule::PreferIdentity,
    // Ours: transaction-control, concurrently-in-transaction, destructive.
    Rule::TransactionNesting,
    Rule::BanUncommittedTransaction,
    Rule::BanConcurrentIndexCreationInTransaction,
    Rule::BanDropColumn,
    Rule::BanDropTable,
    Rule::UnusedIgnore,
    // Timeouts are session settings the runner owns, not something every file should
    // repeat; `migrate rehearse` measures how long each lock is held instead.
    Rule::RequireLockTimeout,
    Rule::RequireStatementTimeout,
];

/// One finding: where, which rule, why, what to do; `acknowledged` holds the reason given.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub file: String,
    pub line: usize,
    pub rule: String,
    pub reason: String,
    pub hint: String,
    pub acknowledged: Option<String>,
}

impl flags::MigrateLint {
    pub(crate) fn run(self) -> Result<()> {
        let dir = super::layout::folder()?.dir.clone();
        let mut baseline = baseline::Baseline::load(&dir)?;
        let targets = self.targets(&dir, &baseline)?;
        let mut findings = Vec::new();
        for (shown, path) in &targets {
            let sql = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let down_exists =
                name.strip_suffix(".up.sql").map(|stem| path.with_file_name(format!("{stem}.down.sql")).is_file());
            let mut found = lint_text(shown, &name, &sql, down_exists);
            // Recorded before the old baseline is applied, so what it accepted stays accepted.
            if self.update_baseline {
                baseline.record(&name, &sql, &found);
            }
            baseline.apply(&name, &sql, &mut found);
            findings.extend(found);
        }
        if self.update_baseline {
            baseline.save(&dir)?;
            status(format!("wrote migrations/{BASELINE_FILE}: {} file(s) recorded as reviewed", targets.len()));
            return Ok(());
        }
        report(&findings, targets.len())
    }

    /// The files to lint: the ones named, or the migrations folder (without `--all`, only
    /// files the baseline does not hold as they are: new and changed ones).
    fn targets(&self, dir: &Path, baseline: &baseline::Baseline) -> Result<Vec<(String, PathBuf)>> {
        if !self.files.is_empty() {
            let mut targets = Vec::new();
            for file in &self.files {
                let shown = file.display().to_string();
                if !file.is_file() {
                    bail!(
                        "{shown}: no such file\nhint: name migration files, e.g. migrations/0009_add_notes.up.sql, or pass --all"
                    );
                }
                if file.extension().is_none_or(|e| e != "sql") {
                    bail!(
                        "{shown} is not an .sql file\nhint: name migration files, e.g. migrations/0009_add_notes.up.sql"
                    );
                }
                targets.push((shown, file.clone()));
            }
            return Ok(targets);
        }
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
        };
        names.sort();
        let mut targets = Vec::new();
        let shown = &super::layout::folder()?.shown;
        for name in names {
            let path = dir.join(&name);
            let sql = std::fs::read_to_string(&path).with_context(|| format!("cannot read {shown}/{name}"))?;
            if self.all || self.update_baseline || !baseline.holds(&name, &sql) {
                targets.push((format!("{shown}/{name}"), path));
            }
        }
        Ok(targets)
    }
}

fn report(findings: &[Finding], files: usize) -> Result<()> {
    let open: Vec<&Finding> = findings.iter().filter(|f| f.acknowledged.is_none()).collect();
    for f in &open {
        data(format!("{}:{}: {}: {}", f.file, f.line, f.rule, f.reason))?;
        data(format!("  hint: {}", f.hint))?;
    }
    status(format!(
        "linted {files} file(s): {} finding(s), {} acknowledged",
        findings.len(),
        findings.len() - open.len()
    ));
    if !open.is_empty() {
        bail!(
            "{} unacknowledged finding(s) in migrations (listed above)\nhint: fix them, or acknowledge one on the line above its statement: `-- {} RULE: why it is safe`",
            open.len(),
            script::ACK
        );
    }
    Ok(())
}

/// `migrate up` on staging and production: refuses pending files with unacknowledged
/// findings (the baseline counts as acknowledgement).
pub(crate) fn refuse_unacknowledged(pending: &[&Migration]) -> Result<()> {
    let dir = super::layout::folder()?.dir.clone();
    let baseline = baseline::Baseline::load(&dir)?;
    let mut open = Vec::new();
    for m in pending {
        for (script, down) in [(Some(&m.up), Some(true)), (m.down.as_ref(), None)] {
            let Some(script) = script else { continue };
            // `file` is the path as messages show it; the baseline knows files by name.
            let name =
                Path::new(&script.file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut found = lint_text(&script.file, &name, &script.sql, down);
            baseline.apply(&name, &script.sql, &mut found);
            open.extend(found.into_iter().filter(|f| f.acknowledged.is_none()));
        }
    }
    if let Some(first) = open.first() {
        bail!(
            "{} unacknowledged lint finding(s) in the pending migrations, the first {}:{}: {}: {}\nhint: `cargo xtask migrate lint` lists them; fix or acknowledge them before migrating this environment",
            open.len(),
            first.file,
            first.line,
            first.rule,
            first.reason
        );
    }
    Ok(())
}

/// Records migrations in the lint baseline as they are, accepting their findings: for
/// `migrate baseline`, whose first migration is what production already holds.
pub(crate) fn accept(migrations: &[Migration]) -> Result<()> {
    let dir = super::layout::folder()?.dir.clone();
    let mut baseline = baseline::Baseline::load(&dir)?;
    for m in migrations {
        for (script, down) in [(Some(&m.up), Some(m.down.is_some())), (m.down.as_ref(), None)] {
            let Some(script) = script else { continue };
            let name =
                Path::new(&script.file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let found = lint_text(&script.file, &name, &script.sql, down);
            baseline.record(&name, &script.sql, &found);
        }
    }
    baseline.save(&dir)
}

/// Lints one file. `down_exists`: for an up file, whether its down file is there.
pub(crate) fn lint_text(shown: &str, name: &str, sql: &str, down_exists: Option<bool>) -> Vec<Finding> {
    let up = !name.ends_with(".down.sql");
    let no_transaction = sql.lines().next().is_some_and(|l| l.trim() == files::NO_TRANSACTION);
    let parsed = script::parse(sql);
    let lines = script::LineIndex::new(sql);
    let finding = |line, rule: &str, reason: String, hint: String| Finding {
        file: shown.to_string(),
        line,
        rule: rule.to_string(),
        reason,
        hint,
        acknowledged: None,
    };
    let mut found = Vec::new();
    // The first syntax error only: the parser's recovery makes the next ones noise.
    for (line, message) in parsed.errors.iter().take(1) {
        found.push(finding(
            *line,
            "syntax",
            message.clone(),
            "PostgreSQL will refuse this too; fix the statement".into(),
        ));
    }
    if down_exists == Some(false) {
        let down = name.replace(".up.sql", ".down.sql");
        found.push(finding(
            1,
            rules::MISSING_DOWN,
            format!("{down} is missing"),
            "write the down migration: it restores the schema from before this file".into(),
        ));
    }
    // Hits by statement, so acknowledgements can silence exactly their rule.
    let mut hits: Vec<(Option<usize>, usize, String, String, String)> = Vec::new();
    let mut ours = rules::check(&parsed.statements, up, no_transaction);
    if up {
        ours.extend(tracking::check(&parsed.statements));
    }
    for (k, rule, reason, hint) in ours {
        hits.push((Some(k), parsed.statements[k].line, rule.to_string(), reason, hint));
    }
    if up {
        for v in squawk(sql, no_transaction) {
            let at = usize::from(v.text_range.start());
            let k = parsed.statements.iter().position(|s| s.start <= at && at < s.end.max(s.start + 1));
            let line = k.map_or_else(|| lines.line(at), |k| parsed.statements[k].line);
            let hint = v.help.clone().unwrap_or_else(|| format!("see https://squawkhq.com/docs/{}", v.code));
            hits.push((k, line, v.code.to_string(), v.message.clone(), hint));
        }
    }
    // A table each: a statement creating two tables in `public` (a `DO` block) needs two
    // acknowledgements of rls-required.
    let mut used: Vec<usize> = Vec::new();
    for (k, line, rule, reason, hint) in &hits {
        let mut f = finding(*line, rule, reason.clone(), hint.clone());
        f.acknowledged = k.and_then(|k| {
            let nth = if rule == rules::RLS { used.iter().filter(|&&u| u == k).count() } else { 0 };
            parsed.statements[k].acknowledges(rule, nth).map(|a| a.reason.clone())
        });
        if rule == rules::RLS && f.acknowledged.is_some() {
            used.extend(*k);
        }
        found.push(f);
    }
    found.extend(
        check_acks(&parsed, &hits).into_iter().map(|(line, rule, reason, hint)| finding(line, rule, reason, hint)),
    );
    found.sort_by_key(|f| f.line);
    found
}

/// Acknowledgements must name a known rule, give a reason, and silence something.
fn check_acks(
    parsed: &Script,
    hits: &[(Option<usize>, usize, String, String, String)],
) -> Vec<(usize, &'static str, String, String)> {
    let mut problems = Vec::new();
    for (k, s) in parsed.statements.iter().enumerate() {
        for ack in &s.acks {
            let ours = rules::NAMES.contains(&ack.rule.as_str()) || ack.rule == "syntax";
            let squawk = ack.rule.parse::<Rule>().is_ok();
            let rehearse = REHEARSE_RULES.contains(&ack.rule.as_str());
            if !(ours || squawk || rehearse) {
                problems.push((
                    ack.line,
                    "unknown-ack",
                    format!("`{}` is not a rule", ack.rule),
                    "name a rule as `migrate lint` prints it, e.g. `-- migrate:ack destructive: why`".to_string(),
                ));
            } else if ack.reason.is_empty() {
                problems.push((
                    ack.line,
                    "ack-needs-reason",
                    format!("the acknowledgement of {} gives no reason", ack.rule),
                    format!("say why it is safe: `-- {} {}: <why>`", script::ACK, ack.rule),
                ));
            } else if !rehearse && !hits.iter().any(|h| h.0 == Some(k) && h.2 == ack.rule) {
                problems.push((
                    ack.line,
                    "unused-ack",
                    format!("{} does not fire on this statement", ack.rule),
                    "remove the acknowledgement, or move it above the statement it is meant for".to_string(),
                ));
            }
        }
    }
    problems
}

/// Squawk's rules over the whole file (some look across statements).
fn squawk(sql: &str, no_transaction: bool) -> Vec<squawk_linter::Violation> {
    let mut linter = Linter::with_rules(&[], SQUAWK_EXCLUDED);
    linter.settings.assume_in_transaction = !no_transaction;
    linter.lint(&squawk_syntax::SourceFile::parse(sql), sql)
}
